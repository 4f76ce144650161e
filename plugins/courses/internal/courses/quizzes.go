package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Quiz is a quiz of a course: single and multiple choice questions, graded
// automatically. A quiz belongs to the course's draft; learners reach it
// when a published version lists it (Content.Quizzes).
type Quiz struct {
	ID        string     `json:"id" format:"uuid"`
	CourseID  string     `json:"course_id" format:"uuid"`
	LessonID  string     `json:"lesson_id,omitempty" format:"uuid" doc:"An inline quiz of a lesson; absent for a quiz of the whole course."`
	Title     string     `json:"title"`
	Questions []Question `json:"questions"`
	// PassMark is the percentage to pass; nil: the course's, then the
	// institution's default_pass_mark.
	PassMark *int `json:"pass_mark" doc:"null: the course's, then the institution's default_pass_mark."`
	// MaxAttempts limits attempts per enrolment; nil: the institution's
	// default_quiz_attempts (0 there: unlimited).
	MaxAttempts *int      `json:"max_attempts" doc:"null: the institution's default_quiz_attempts."`
	Required    bool      `json:"required"`
	CreatedBy   string    `json:"created_by" format:"uuid"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Question is one question of a quiz. Correct is shown only to those who
// may change the course: learners never receive the answers.
type Question struct {
	ID      string           `json:"id"`
	Prompt  string           `json:"prompt"`
	Kind    string           `json:"kind" enum:"single,multiple"`
	Points  int              `json:"points"`
	Options []QuestionOption `json:"options"`
	Correct []string         `json:"correct,omitempty" doc:"Only for those who may change the course."`
}

// QuestionOption is one choice of a question.
type QuestionOption struct {
	ID   string `json:"id" minLength:"1" maxLength:"64"`
	Text string `json:"text" minLength:"1" maxLength:"1000"`
}

// QuestionInput is a question as an author sends it.
type QuestionInput struct {
	ID      string           `json:"id" minLength:"1" maxLength:"64" doc:"The author's key for the question, unique in the quiz."`
	Prompt  string           `json:"prompt" minLength:"1" maxLength:"5000"`
	Kind    string           `json:"kind" enum:"single,multiple"`
	Points  *int             `json:"points,omitempty" minimum:"1" maximum:"100" default:"1"`
	Options []QuestionOption `json:"options" minItems:"2" maxItems:"20"`
	Correct []string         `json:"correct" minItems:"1" doc:"The IDs of the correct options: exactly one for a single-choice question."`
}

// CreateQuiz is the body of POST /api/v1/courses/{course_id}/quizzes.
type CreateQuiz struct {
	Title       string          `json:"title" minLength:"1" maxLength:"200"`
	LessonID    *string         `json:"lesson_id,omitempty" format:"uuid" doc:"A lesson of the course, for an inline quiz."`
	Questions   []QuestionInput `json:"questions" minItems:"1" maxItems:"100"`
	PassMark    *int            `json:"pass_mark,omitempty" minimum:"0" maximum:"100"`
	MaxAttempts *int            `json:"max_attempts,omitempty" minimum:"1" maximum:"100"`
	Required    *bool           `json:"required,omitempty" default:"true"`
}

// PatchQuiz is the body of PATCH /api/v1/quizzes/{quiz_id}: absent fields
// stay as they are; null clears lesson_id, pass_mark and max_attempts.
type PatchQuiz struct {
	Title       sdk.Optional[string]          `json:"title" minLength:"1" maxLength:"200"`
	LessonID    sdk.Optional[string]          `json:"lesson_id" format:"uuid"`
	Questions   sdk.Optional[[]QuestionInput] `json:"questions" minItems:"1" maxItems:"100"`
	PassMark    sdk.Optional[int]             `json:"pass_mark" minimum:"0" maximum:"100"`
	MaxAttempts sdk.Optional[int]             `json:"max_attempts" minimum:"1" maximum:"100"`
	Required    sdk.Optional[bool]            `json:"required"`
}

// quizKindSingle is the kind of question with one correct option (the
// other kind, multiple, has one or more).
const quizKindSingle = "single"

func (p *Plugin) quizRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/quizzes", Permission: PermCourseAuthor,
			Summary: "Add a quiz to a course's draft (learners get it at the next publish)", Status: http.StatusCreated,
			Request: CreateQuiz{}, Response: Quiz{},
			Handler: p.createQuiz,
		},
		{
			Method: "GET", Path: "/api/v1/quizzes/{quiz_id}", Permission: PermCourseRead,
			Summary:  "A quiz: learners get the questions of a published quiz without the answers; authors get everything",
			Response: Quiz{},
			Handler:  p.getQuiz,
		},
		{
			Method: "PATCH", Path: "/api/v1/quizzes/{quiz_id}", Permission: PermCourseAuthor,
			Summary: "Change a quiz (its questions only until someone has attempted it)",
			Request: PatchQuiz{}, Response: Quiz{},
			Handler: p.patchQuiz,
		},
		{
			Method: "DELETE", Path: "/api/v1/quizzes/{quiz_id}", Permission: PermCourseAuthor,
			Summary: "Delete a quiz that no published version lists and no one has attempted", Status: http.StatusNoContent,
			Handler: p.deleteQuiz,
		},
	}
}

// checkQuestions checks what the schema of QuestionInput cannot say,
// naming each wrong field by its path (questions.2.correct): IDs unique,
// text not blank, correct options among the question's own, one for a
// single choice. It returns the questions with defaults set.
func checkQuestions(bad *[]sdk.FieldError, field string, in []QuestionInput) []Question {
	out := make([]Question, 0, len(in))
	seen := map[string]int{}
	for i, qi := range in {
		f := fmt.Sprintf("%s.%d", field, i)
		q := Question{ID: qi.ID, Kind: qi.Kind, Points: 1, Options: slices.Clone(qi.Options)}
		if j, dup := seen[qi.ID]; dup {
			*bad = append(*bad, sdk.FieldError{Field: f + ".id", Message: fmt.Sprintf("repeats the id of %s.%d", field, j)})
		}
		seen[qi.ID] = i
		q.Prompt = trimmed(bad, f+".prompt", qi.Prompt, true)
		if qi.Points != nil {
			q.Points = *qi.Points
		}
		options := map[string]bool{}
		for k, o := range qi.Options {
			of := fmt.Sprintf("%s.options.%d", f, k)
			if options[o.ID] {
				*bad = append(*bad, sdk.FieldError{Field: of + ".id", Message: fmt.Sprintf("option id %q is used twice in this question", o.ID)})
			}
			options[o.ID] = true
			q.Options[k].Text = trimmed(bad, of+".text", o.Text, true)
		}
		q.Correct = checkCorrect(bad, f+".correct", qi.Kind, qi.Correct, options)
		out = append(out, q)
	}
	return out
}

// checkCorrect checks a question's correct option IDs (at least one, as
// the schema says): each an option of the question, once, and exactly one
// for a single choice. It returns them sorted.
func checkCorrect(bad *[]sdk.FieldError, field, kind string, correct []string, options map[string]bool) []string {
	chosen := map[string]bool{}
	for _, id := range correct {
		switch {
		case !options[id]:
			*bad = append(*bad, sdk.FieldError{Field: field, Message: fmt.Sprintf("unknown option id %q", id)})
			return nil
		case chosen[id]:
			*bad = append(*bad, sdk.FieldError{Field: field, Message: fmt.Sprintf("option %q is listed twice", id)})
			return nil
		}
		chosen[id] = true
	}
	if kind == quizKindSingle && len(correct) != 1 {
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "a single-choice question needs exactly one correct option"})
	}
	return slices.Sorted(slices.Values(correct))
}

// createQuiz handles POST /api/v1/courses/{course_id}/quizzes.
func (p *Plugin) createQuiz(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in CreateQuiz
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	q := Quiz{CourseID: courseID, Required: in.Required == nil || *in.Required, PassMark: in.PassMark, MaxAttempts: in.MaxAttempts, CreatedBy: req.Principal.ID()}
	q.Title = trimmed(&bad, "title", in.Title, true)
	if in.LessonID != nil {
		q.LessonID = strings.ToLower(*in.LessonID)
	}
	q.Questions = checkQuestions(&bad, "questions", in.Questions)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := authorCourse(ctx, tx, req, courseID); err != nil {
			return err
		}
		if err := checkCourseLesson(ctx, tx, courseID, q.LessonID); err != nil {
			return err
		}
		questions, err := json.Marshal(q.Questions)
		if err != nil {
			return fmt.Errorf("encoding questions: %w", err)
		}
		err = tx.QueryRow(ctx, `
			INSERT INTO quizzes (course_id, lesson_id, title, questions, pass_mark, max_attempts, required, created_by)
			VALUES ($1, NULLIF($2, '')::uuid, $3, $4, $5, $6, $7, $8)
			RETURNING id, created_at, updated_at`,
			courseID, q.LessonID, q.Title, questions, q.PassMark, q.MaxAttempts, q.Required, q.CreatedBy,
		).Scan(&q.ID, &q.CreatedAt, &q.UpdatedAt)
		if err != nil {
			return fmt.Errorf("inserting quiz: %w", err)
		}
		_, err = touchDraft(ctx, tx, courseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, q)
}

// getQuiz handles GET /api/v1/quizzes/{quiz_id}.
func (p *Plugin) getQuiz(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	quizID, err := req.UUIDParam("quiz_id")
	if err != nil {
		return nil, err
	}
	var q *Quiz
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var author bool
		q, _, author, err = readableQuiz(ctx, tx, req.Principal, quizID)
		if err != nil {
			return err
		}
		if !author {
			q.hideAnswers()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, q)
}

// patchQuiz handles PATCH /api/v1/quizzes/{quiz_id}. Title, lesson and
// required reach learners at the next publish (the version lists them);
// pass mark and attempt limit apply to attempts from now on. Questions are
// fixed once anyone has attempted the quiz: earlier attempts were graded
// against them, and their results are recomputed from them.
func (p *Plugin) patchQuiz(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	quizID, err := req.UUIDParam("quiz_id")
	if err != nil {
		return nil, err
	}
	var in PatchQuiz
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	title := notNullText(&bad, "title", in.Title, true)
	questionsIn, setQuestions := notNull(&bad, "questions", in.Questions)
	var questions []Question
	if setQuestions {
		questions = checkQuestions(&bad, "questions", questionsIn)
	}
	required, setRequired := notNull(&bad, "required", in.Required)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	var q *Quiz
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if q, err = loadQuiz(ctx, tx, quizID, ""); err != nil {
			return err
		}
		// The course's lock first, as every change to its content takes it.
		if _, err := authorCourse(ctx, tx, req, q.CourseID); err != nil {
			return err
		}
		if q, err = loadQuiz(ctx, tx, quizID, "FOR UPDATE"); err != nil {
			return err
		}
		if title != nil {
			q.Title = *title
		}
		if in.LessonID.Set() {
			lessonID, _ := in.LessonID.Get()
			lessonID = strings.ToLower(lessonID)
			if err := checkCourseLesson(ctx, tx, q.CourseID, lessonID); err != nil {
				return err
			}
			q.LessonID = lessonID
		}
		if setQuestions {
			attempted, err := quizAttempted(ctx, tx, quizID)
			if err != nil {
				return err
			}
			if attempted {
				return sdk.Errorf(sdk.ErrConflict, "quiz %s has attempts graded against its questions: its questions can no longer change (create a new quiz instead)", quizID).WithCode("quiz_attempted")
			}
			q.Questions = questions
		}
		if in.PassMark.Set() {
			q.PassMark = in.PassMark.Ptr()
		}
		if in.MaxAttempts.Set() {
			q.MaxAttempts = in.MaxAttempts.Ptr()
		}
		if setRequired {
			q.Required = required
		}
		encoded, err := json.Marshal(q.Questions)
		if err != nil {
			return fmt.Errorf("encoding questions: %w", err)
		}
		err = tx.QueryRow(ctx, `
			UPDATE quizzes SET title = $2, lesson_id = NULLIF($3, '')::uuid, questions = $4, pass_mark = $5,
			                   max_attempts = $6, required = $7, updated_at = now()
			WHERE id = $1 RETURNING updated_at`,
			quizID, q.Title, q.LessonID, encoded, q.PassMark, q.MaxAttempts, q.Required).Scan(&q.UpdatedAt)
		if err != nil {
			return fmt.Errorf("updating quiz: %w", err)
		}
		_, err = touchDraft(ctx, tx, q.CourseID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, q)
}

// deleteQuiz handles DELETE /api/v1/quizzes/{quiz_id}. A quiz that the
// latest published version lists stays: learners are taking it, and their
// progress is measured against that version (an author who no longer wants
// it counted makes it optional, which the next publish carries). So does a
// quiz with attempts: they are learners' records.
func (p *Plugin) deleteQuiz(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	quizID, err := req.UUIDParam("quiz_id")
	if err != nil {
		return nil, err
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		q, err := loadQuiz(ctx, tx, quizID, "")
		if err != nil {
			return err
		}
		c, err := authorCourse(ctx, tx, req, q.CourseID)
		if err != nil {
			return err
		}
		if c.Status == "published" {
			content, err := publishedContent(ctx, tx, c.ID)
			if err != nil {
				return err
			}
			if refListed(content.Quizzes, quizID) {
				return sdk.Errorf(sdk.ErrConflict, "quiz %s is part of the published version %d of its course: learners are taking it", quizID, content.Version).WithCode("quiz_published")
			}
		}
		attempted, err := quizAttempted(ctx, tx, quizID)
		if err != nil {
			return err
		}
		if attempted {
			return sdk.Errorf(sdk.ErrConflict, "quiz %s has learners' attempts and cannot be deleted", quizID).WithCode("quiz_attempted")
		}
		if _, err := tx.Exec(ctx, `DELETE FROM quizzes WHERE id = $1`, quizID); err != nil {
			return fmt.Errorf("deleting quiz: %w", err)
		}
		_, err = touchDraft(ctx, tx, c.ID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

// hideAnswers removes what a learner must not see.
func (q *Quiz) hideAnswers() {
	for i := range q.Questions {
		q.Questions[i].Correct = nil
	}
}

// loadQuiz reads a quiz of the transaction's institution (another
// institution's is a 404) with a locking clause: "", "FOR SHARE" or
// "FOR UPDATE".
func loadQuiz(ctx context.Context, tx pgx.Tx, quizID, lock string) (*Quiz, error) {
	sql := `SELECT id, course_id, coalesce(lesson_id::text, ''), title, questions, pass_mark, max_attempts, required,
	               created_by, created_at, updated_at
	        FROM quizzes WHERE id = $1 ` + lock
	var q Quiz
	err := tx.QueryRow(ctx, sql, quizID).Scan(&q.ID, &q.CourseID, &q.LessonID, &q.Title, &q.Questions, &q.PassMark,
		&q.MaxAttempts, &q.Required, &q.CreatedBy, &q.CreatedAt, &q.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no quiz %s", quizID)
	}
	if err != nil {
		return nil, fmt.Errorf("reading quiz %s: %w", quizID, err)
	}
	return &q, nil
}

// readableQuiz loads a quiz the principal may read: anyone who may change
// its course (author true: answers included), others only when the course's
// latest published version lists it. Otherwise it is a 404.
func readableQuiz(ctx context.Context, tx pgx.Tx, p sdk.Principal, quizID string) (*Quiz, *course, bool, error) {
	q, err := loadQuiz(ctx, tx, quizID, "")
	if err != nil {
		return nil, nil, false, err
	}
	c, err := loadCourse(ctx, tx, q.CourseID, false)
	if err != nil {
		return nil, nil, false, err
	}
	author, err := canAuthor(ctx, tx, c.ID, p)
	if err != nil {
		return nil, nil, false, err
	}
	if author {
		return q, c, true, nil
	}
	if _, _, err := publishedQuiz(ctx, tx, quizID, ""); err != nil {
		return nil, nil, false, err
	}
	return q, c, false, nil
}

// publishedQuiz loads a quiz that the latest published version of its
// course lists, and its course: what learners may attempt. lock is
// loadQuiz's.
func publishedQuiz(ctx context.Context, tx pgx.Tx, quizID, lock string) (*Quiz, *course, error) {
	q, err := loadQuiz(ctx, tx, quizID, lock)
	if err != nil {
		return nil, nil, err
	}
	c, err := loadCourse(ctx, tx, q.CourseID, false)
	if err != nil {
		return nil, nil, err
	}
	if c.Status != "published" {
		return nil, nil, sdk.Errorf(sdk.ErrNotFound, "no quiz %s", quizID)
	}
	content, err := publishedContent(ctx, tx, c.ID)
	if err != nil {
		return nil, nil, err
	}
	if !refListed(content.Quizzes, quizID) {
		return nil, nil, sdk.Errorf(sdk.ErrNotFound, "no quiz %s", quizID)
	}
	return q, c, nil
}

func quizAttempted(ctx context.Context, tx pgx.Tx, quizID string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM quiz_attempts WHERE quiz_id = $1)`, quizID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("looking for attempts: %w", err)
	}
	return ok, nil
}
