package courses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Quiz is a quiz of a course: single and multiple choice questions, graded
// automatically. A quiz belongs to the course's draft; learners reach it
// when a published version lists it (Content.Quizzes).
type Quiz struct {
	ID        string     `json:"id"`
	CourseID  string     `json:"course_id"`
	LessonID  string     `json:"lesson_id,omitempty"` // an inline quiz of a lesson; "" for a course quiz
	Title     string     `json:"title"`
	Questions []Question `json:"questions"`
	// PassMark is the percentage to pass; nil: the course's, then the
	// institution's default_pass_mark.
	PassMark *int `json:"pass_mark"`
	// MaxAttempts limits attempts per enrolment; nil: the institution's
	// default_quiz_attempts (0 there: unlimited).
	MaxAttempts *int      `json:"max_attempts"`
	Required    bool      `json:"required"`
	CreatedBy   string    `json:"created_by"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Question is one question of a quiz. Correct is shown only to those who
// may change the course: learners never receive the answers.
type Question struct {
	ID      string           `json:"id"`
	Prompt  string           `json:"prompt"`
	Kind    string           `json:"kind"` // single or multiple
	Points  int              `json:"points"`
	Options []QuestionOption `json:"options"`
	Correct []string         `json:"correct,omitempty"`
}

// QuestionOption is one choice of a question.
type QuestionOption struct {
	ID   string `json:"id"`
	Text string `json:"text"`
}

// QuizAttempt is a learner's graded attempt at a quiz. Results say which
// questions were right, never what the right answers were.
type QuizAttempt struct {
	ID          string              `json:"id"`
	QuizID      string              `json:"quiz_id"`
	EnrolmentID string              `json:"enrolment_id"`
	Attempt     int                 `json:"attempt"`
	Score       int                 `json:"score"`
	MaxScore    int                 `json:"max_score"`
	Percent     int                 `json:"percent"`
	Passed      bool                `json:"passed"`
	Answers     map[string][]string `json:"answers"`
	Results     []QuestionResult    `json:"results"`
	SubmittedAt time.Time           `json:"submitted_at"`
	// PassMark and AttemptsLeft are in the answer to an attempt: the pass
	// mark it was judged against and how many attempts remain (absent:
	// unlimited).
	PassMark     *int `json:"pass_mark,omitempty"`
	AttemptsLeft *int `json:"attempts_left,omitempty"`
}

// QuestionResult is how one question of an attempt scored.
type QuestionResult struct {
	QuestionID string `json:"question_id"`
	Correct    bool   `json:"correct"`
	Points     int    `json:"points"` // earned: the question's points or 0
}

// Limits of a quiz.
const (
	maxQuestions     = 100
	maxQuestionPts   = 100
	minOptions       = 2
	maxOptions       = 20
	maxQuizKey       = 64 // question and option IDs, chosen by the author
	maxQuizAttempts  = 100
	maxPromptChars   = 5000
	maxOptionChars   = 1000
	quizTitleChars   = 200
	quizKindSingle   = "single"
	quizKindMultiple = "multiple"
)

func (p *Plugin) quizRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/courses/{course_id}/quizzes", Permission: PermCourseAuthor,
			Summary: "Add a quiz to a course's draft (learners get it at the next publish)", Status: http.StatusCreated,
			Request: quizCreateSchema, Response: quizSchema,
			Handler: sdk.HandlerFunc(p.createQuiz),
		},
		{
			Method: "GET", Path: "/api/v1/quizzes/{quiz_id}", Permission: PermCourseRead,
			Summary:  "A quiz: learners get the questions of a published quiz without the answers; authors get everything",
			Response: quizSchema,
			Handler:  sdk.HandlerFunc(p.getQuiz),
		},
		{
			Method: "PATCH", Path: "/api/v1/quizzes/{quiz_id}", Permission: PermCourseAuthor,
			Summary: "Change a quiz (its questions only until someone has attempted it)",
			Request: quizPatchSchema, Response: quizSchema,
			Handler: sdk.HandlerFunc(p.patchQuiz),
		},
		{
			Method: "DELETE", Path: "/api/v1/quizzes/{quiz_id}", Permission: PermCourseAuthor,
			Summary: "Delete a quiz that no published version lists and no one has attempted", Status: http.StatusNoContent,
			Handler: sdk.HandlerFunc(p.deleteQuiz),
		},
		{
			Method: "POST", Path: "/api/v1/quizzes/{quiz_id}/attempts", Permission: PermEnrolSelf,
			Summary: "Attempt a quiz of a course one is enrolled in; graded at once", Status: http.StatusCreated,
			Request: attemptCreateSchema, Response: attemptSchema,
			Handler: sdk.HandlerFunc(p.attemptQuiz),
		},
		{
			Method: "GET", Path: "/api/v1/quizzes/{quiz_id}/attempts", Permission: PermEnrolSelf,
			Summary: "The caller's own attempts at a quiz, oldest first",
			Query:   []string{"limit", "cursor"}, Response: attemptPageSchema,
			Handler: sdk.HandlerFunc(p.listAttempts),
		},
	}
}

// questionInput is a question as an author sends it (points default to 1).
type questionInput struct {
	ID      string           `json:"id"`
	Prompt  string           `json:"prompt"`
	Kind    string           `json:"kind"`
	Points  *int             `json:"points"`
	Options []QuestionOption `json:"options"`
	Correct []string         `json:"correct"`
}

type quizInput struct {
	Title       string          `json:"title"`
	LessonID    *string         `json:"lesson_id"`
	Questions   []questionInput `json:"questions"`
	PassMark    *int            `json:"pass_mark"`
	MaxAttempts *int            `json:"max_attempts"`
	Required    *bool           `json:"required"`
}

// checkQuestions validates an author's questions, naming each wrong field
// by its path (questions[2].correct), and returns them with defaults set.
func checkQuestions(bad *[]sdk.FieldError, in []questionInput) []Question {
	if len(in) < 1 || len(in) > maxQuestions {
		*bad = append(*bad, sdk.FieldError{Field: "questions", Message: fmt.Sprintf("must have 1 to %d questions", maxQuestions)})
		return nil
	}
	out := make([]Question, 0, len(in))
	seen := map[string]int{}
	for i, qi := range in {
		f := fmt.Sprintf("questions[%d]", i)
		q := Question{ID: qi.ID, Kind: qi.Kind, Points: 1, Options: qi.Options, Correct: qi.Correct}
		if quizKey(bad, f+".id", qi.ID) {
			if j, dup := seen[qi.ID]; dup {
				*bad = append(*bad, sdk.FieldError{Field: f + ".id", Message: fmt.Sprintf("repeats the id of questions[%d]", j)})
			}
			seen[qi.ID] = i
		}
		q.Prompt = text(bad, f+".prompt", qi.Prompt, 1, maxPromptChars)
		if qi.Kind != quizKindSingle && qi.Kind != quizKindMultiple {
			*bad = append(*bad, sdk.FieldError{Field: f + ".kind", Message: "must be single or multiple"})
		}
		if qi.Points != nil {
			q.Points = *qi.Points
			if q.Points < 1 || q.Points > maxQuestionPts {
				*bad = append(*bad, sdk.FieldError{Field: f + ".points", Message: fmt.Sprintf("must be between 1 and %d", maxQuestionPts)})
			}
		}
		options := map[string]bool{}
		if len(qi.Options) < minOptions || len(qi.Options) > maxOptions {
			*bad = append(*bad, sdk.FieldError{Field: f + ".options", Message: fmt.Sprintf("must have %d to %d options", minOptions, maxOptions)})
		}
		for k, o := range qi.Options {
			of := fmt.Sprintf("%s.options[%d]", f, k)
			if quizKey(bad, of+".id", o.ID) {
				if options[o.ID] {
					*bad = append(*bad, sdk.FieldError{Field: of + ".id", Message: fmt.Sprintf("option id %q is used twice in this question", o.ID)})
				}
				options[o.ID] = true
			}
			q.Options[k].Text = text(bad, of+".text", o.Text, 1, maxOptionChars)
		}
		q.Correct = checkCorrect(bad, f+".correct", qi.Kind, qi.Correct, options)
		out = append(out, q)
	}
	return out
}

// checkCorrect validates a question's correct option IDs.
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
	switch {
	case kind == quizKindSingle && len(correct) != 1:
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "a single-choice question needs exactly one correct option"})
	case kind == quizKindMultiple && len(correct) == 0:
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "a multiple-choice question needs at least one correct option"})
	}
	return slices.Sorted(slices.Values(correct))
}

// quizKey checks an author-chosen question or option ID.
func quizKey(bad *[]sdk.FieldError, field, id string) bool {
	if id == "" || utf8.RuneCountInString(id) > maxQuizKey || !utf8.ValidString(id) {
		*bad = append(*bad, sdk.FieldError{Field: field, Message: fmt.Sprintf("must be 1 to %d characters", maxQuizKey)})
		return false
	}
	return true
}

// checkQuizSettings validates pass_mark and max_attempts.
func checkQuizSettings(bad *[]sdk.FieldError, passMark, maxAttempts *int) {
	if passMark != nil && (*passMark < 0 || *passMark > 100) {
		*bad = append(*bad, sdk.FieldError{Field: "pass_mark", Message: "must be between 0 and 100"})
	}
	if maxAttempts != nil && (*maxAttempts < 1 || *maxAttempts > maxQuizAttempts) {
		*bad = append(*bad, sdk.FieldError{Field: "max_attempts", Message: fmt.Sprintf("must be between 1 and %d", maxQuizAttempts)})
	}
}

// createQuiz handles POST /api/v1/courses/{course_id}/quizzes.
func (p *Plugin) createQuiz(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	courseID, err := req.UUIDParam("course_id")
	if err != nil {
		return nil, err
	}
	var in quizInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	q := Quiz{CourseID: courseID, Required: true, PassMark: in.PassMark, MaxAttempts: in.MaxAttempts, CreatedBy: req.Principal.ID()}
	q.Title = text(&bad, "title", in.Title, 1, quizTitleChars)
	if in.LessonID != nil {
		q.LessonID = bodyUUID(&bad, "lesson_id", *in.LessonID)
	}
	q.Questions = checkQuestions(&bad, in.Questions)
	checkQuizSettings(&bad, in.PassMark, in.MaxAttempts)
	if in.Required != nil {
		q.Required = *in.Required
	}
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
		return assessmentDraftChanged(ctx, tx, courseID)
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

// quizPatch is a change to a quiz: absent fields stay as they are; null
// clears lesson_id, pass_mark and max_attempts.
type quizPatch struct {
	Title       *string           `json:"title"`
	LessonID    setOrNull[string] `json:"lesson_id"`
	Questions   *[]questionInput  `json:"questions"`
	PassMark    setOrNull[int]    `json:"pass_mark"`
	MaxAttempts setOrNull[int]    `json:"max_attempts"`
	Required    *bool             `json:"required"`
}

// setOrNull is a PATCH field that may be absent (Set false), null (Set,
// Value nil) or a value.
type setOrNull[T any] struct {
	Set   bool
	Value *T
}

// UnmarshalJSON records that the field was sent.
func (o *setOrNull[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if string(b) == "null" {
		o.Value = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Value = &v
	return nil
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
	var in quizPatch
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	var title, lessonID string
	if in.Title != nil {
		title = text(&bad, "title", *in.Title, 1, quizTitleChars)
	}
	if in.LessonID.Value != nil {
		lessonID = bodyUUID(&bad, "lesson_id", *in.LessonID.Value)
	}
	var questions []Question
	if in.Questions != nil {
		questions = checkQuestions(&bad, *in.Questions)
	}
	checkQuizSettings(&bad, in.PassMark.Value, in.MaxAttempts.Value)
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
		if in.Title != nil {
			q.Title = title
		}
		if in.LessonID.Set {
			if err := checkCourseLesson(ctx, tx, q.CourseID, lessonID); err != nil {
				return err
			}
			q.LessonID = lessonID
		}
		if in.Questions != nil {
			attempted, err := quizAttempted(ctx, tx, quizID)
			if err != nil {
				return err
			}
			if attempted {
				return sdk.Errorf(sdk.ErrConflict, "quiz %s has attempts graded against its questions: its questions can no longer change (create a new quiz instead)", quizID).WithCode("quiz_attempted")
			}
			q.Questions = questions
		}
		if in.PassMark.Set {
			q.PassMark = in.PassMark.Value
		}
		if in.MaxAttempts.Set {
			q.MaxAttempts = in.MaxAttempts.Value
		}
		if in.Required != nil {
			q.Required = *in.Required
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
		return assessmentDraftChanged(ctx, tx, q.CourseID)
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
		return assessmentDraftChanged(ctx, tx, c.ID)
	})
	if err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

type attemptInput struct {
	Answers map[string][]string `json:"answers"`
}

// attemptQuiz handles POST /api/v1/quizzes/{quiz_id}/attempts: it grades
// the answers at once, records the attempt and, on a pass, moves the
// learner's progress. The enrolment's row lock makes concurrent attempts
// count one after the other, so the attempt limit holds.
func (p *Plugin) attemptQuiz(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	quizID, err := req.UUIDParam("quiz_id")
	if err != nil {
		return nil, err
	}
	userID, err := learnerUserID(req.Principal, "take quizzes")
	if err != nil {
		return nil, err
	}
	var in attemptInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.Answers == nil {
		return nil, sdk.Invalid(sdk.FieldError{Field: "answers", Message: "is required: an object of question id to chosen option ids"})
	}
	cfg, err := p.config(req)
	if err != nil {
		return nil, err
	}
	var a QuizAttempt
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		// FOR SHARE: the questions cannot change (PATCH) while this
		// attempt is graded against them, and attempts do not wait for
		// each other.
		q, c, err := publishedQuiz(ctx, tx, quizID, "FOR SHARE")
		if err != nil {
			return err
		}
		enrolmentID, err := lockLearnerEnrolment(ctx, tx, q.CourseID, userID)
		if err != nil {
			return err
		}
		answers, err := checkAnswers(q.Questions, in.Answers)
		if err != nil {
			return err
		}
		var done int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM quiz_attempts WHERE quiz_id = $1 AND enrolment_id = $2`, quizID, enrolmentID).Scan(&done); err != nil {
			return fmt.Errorf("counting attempts: %w", err)
		}
		limit := cfg.DefaultQuizAttempts
		if q.MaxAttempts != nil {
			limit = *q.MaxAttempts
		}
		if limit > 0 && done >= limit {
			return sdk.Errorf(sdk.ErrConflict, "you have used all %d attempts at quiz %s", limit, quizID).WithCode("attempts_exhausted")
		}
		passMark := effectivePassMark(q.PassMark, c, cfg)
		a = QuizAttempt{QuizID: quizID, EnrolmentID: enrolmentID, Attempt: done + 1, Answers: answers, PassMark: &passMark}
		a.Results, a.Score, a.MaxScore = gradeQuiz(q.Questions, answers)
		a.Percent = a.Score * 100 / a.MaxScore
		a.Passed = a.Percent >= passMark
		if limit > 0 {
			left := limit - a.Attempt
			a.AttemptsLeft = &left
		}
		encoded, err := json.Marshal(answers)
		if err != nil {
			return fmt.Errorf("encoding answers: %w", err)
		}
		a.SubmittedAt = now()
		err = tx.QueryRow(ctx, `
			INSERT INTO quiz_attempts (quiz_id, enrolment_id, user_id, attempt, answers, score, max_score, percent, passed, submitted_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			quizID, enrolmentID, userID, a.Attempt, encoded, a.Score, a.MaxScore, a.Percent, a.Passed, a.SubmittedAt).Scan(&a.ID)
		if err != nil {
			return fmt.Errorf("recording the attempt: %w", err)
		}
		if a.Passed {
			if _, err := refreshProgress(ctx, tx, req.Publish, enrolmentID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, a)
}

// listAttempts handles GET /api/v1/quizzes/{quiz_id}/attempts: the
// caller's attempts, over every enrolment it had in the course.
func (p *Plugin) listAttempts(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	quizID, err := req.UUIDParam("quiz_id")
	if err != nil {
		return nil, err
	}
	userID, err := learnerUserID(req.Principal, "take quizzes")
	if err != nil {
		return nil, err
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	at, afterID, err := assessmentCursor(page.After)
	if err != nil {
		return nil, err
	}
	var out sdk.Page[QuizAttempt]
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		q, _, _, err := readableQuiz(ctx, tx, req.Principal, quizID)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT id, enrolment_id, attempt, score, max_score, percent, passed, answers, submitted_at
			FROM quiz_attempts
			WHERE quiz_id = $1 AND user_id = $2 AND ($3::timestamptz IS NULL OR (submitted_at, id) > ($3, $4::uuid))
			ORDER BY submitted_at, id LIMIT $5`,
			quizID, userID, at, afterID, page.Limit+1)
		if err != nil {
			return fmt.Errorf("listing attempts: %w", err)
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (QuizAttempt, error) {
			a := QuizAttempt{QuizID: quizID}
			err := r.Scan(&a.ID, &a.EnrolmentID, &a.Attempt, &a.Score, &a.MaxScore, &a.Percent, &a.Passed, &a.Answers, &a.SubmittedAt)
			return a, err
		})
		if err != nil {
			return fmt.Errorf("listing attempts: %w", err)
		}
		for i := range items {
			// The questions are fixed once attempted, so this is how the
			// attempt was graded.
			items[i].Results, _, _ = gradeQuiz(q.Questions, items[i].Answers)
		}
		out = sdk.NewPage(items, page.Limit, func(a QuizAttempt) []string {
			return []string{a.SubmittedAt.Format(time.RFC3339Nano), a.ID}
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// checkAnswers validates a learner's answers against the questions and
// returns them with each question's choice sorted. A question left out
// scores nothing; an unknown question or option, a repeated option or a
// single-choice question answered with other than one option is a 422
// naming answers.<question id>.
func checkAnswers(questions []Question, answers map[string][]string) (map[string][]string, error) {
	byID := map[string]Question{}
	for _, q := range questions {
		byID[q.ID] = q
	}
	var bad []sdk.FieldError
	out := map[string][]string{}
	for _, qid := range slices.Sorted(func(yield func(string) bool) {
		for k := range answers {
			if !yield(k) {
				return
			}
		}
	}) {
		chosen := answers[qid]
		f := "answers." + qid
		q, ok := byID[qid]
		if !ok {
			bad = append(bad, sdk.FieldError{Field: f, Message: "is not a question of this quiz"})
			continue
		}
		if msg := checkChoice(q, chosen); msg != "" {
			bad = append(bad, sdk.FieldError{Field: f, Message: msg})
			continue
		}
		out[qid] = slices.Sorted(slices.Values(chosen))
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	return out, nil
}

// checkChoice says what is wrong with the options chosen for a question,
// or "".
func checkChoice(q Question, chosen []string) string {
	seen := map[string]bool{}
	for _, id := range chosen {
		if !slices.ContainsFunc(q.Options, func(o QuestionOption) bool { return o.ID == id }) {
			return fmt.Sprintf("unknown option id %q", id)
		}
		if seen[id] {
			return fmt.Sprintf("option %q is chosen twice", id)
		}
		seen[id] = true
	}
	if q.Kind == quizKindSingle && len(chosen) != 1 {
		return "a single-choice question takes exactly one option"
	}
	return ""
}

// gradeQuiz scores answers: a question earns its points when the options
// chosen are exactly its correct ones.
func gradeQuiz(questions []Question, answers map[string][]string) (results []QuestionResult, score, maxScore int) {
	results = make([]QuestionResult, 0, len(questions))
	for _, q := range questions {
		maxScore += q.Points
		chosen := slices.Sorted(slices.Values(answers[q.ID]))
		ok := len(chosen) > 0 && slices.Equal(chosen, slices.Sorted(slices.Values(q.Correct)))
		r := QuestionResult{QuestionID: q.ID, Correct: ok}
		if ok {
			r.Points = q.Points
			score += q.Points
		}
		results = append(results, r)
	}
	return results, score, maxScore
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

// OpenAPI schemas of the quiz routes.
var (
	questionOptionSchema = `{"type": "object", "required": ["id", "text"], "additionalProperties": false, "properties": {
		"id": {"type": "string", "minLength": 1, "maxLength": 64},
		"text": {"type": "string", "minLength": 1, "maxLength": 1000}}}`
	questionInputSchema = `{"type": "object", "required": ["id", "prompt", "kind", "options", "correct"], "additionalProperties": false, "properties": {
		"id": {"type": "string", "minLength": 1, "maxLength": 64, "description": "The author's key for the question, unique in the quiz"},
		"prompt": {"type": "string", "minLength": 1, "maxLength": 5000},
		"kind": {"enum": ["single", "multiple"]},
		"points": {"type": "integer", "minimum": 1, "maximum": 100, "default": 1},
		"options": {"type": "array", "minItems": 2, "maxItems": 20, "items": ` + questionOptionSchema + `},
		"correct": {"type": "array", "minItems": 1, "items": {"type": "string"}, "description": "The IDs of the correct options: exactly one for a single-choice question"}}}`
	questionSchema = `{"type": "object", "required": ["id", "prompt", "kind", "points", "options"], "properties": {
		"id": {"type": "string"},
		"prompt": {"type": "string"},
		"kind": {"enum": ["single", "multiple"]},
		"points": {"type": "integer"},
		"options": {"type": "array", "items": ` + questionOptionSchema + `},
		"correct": {"type": "array", "items": {"type": "string"}, "description": "Only for those who may change the course"}}}`
	quizCreateSchema = json.RawMessage(`{"type": "object", "required": ["title", "questions"], "additionalProperties": false, "properties": {
		"title": {"type": "string", "minLength": 1, "maxLength": 200},
		"lesson_id": {"type": "string", "format": "uuid", "description": "A lesson of the course, for an inline quiz"},
		"questions": {"type": "array", "minItems": 1, "maxItems": 100, "items": ` + questionInputSchema + `},
		"pass_mark": {"type": "integer", "minimum": 0, "maximum": 100},
		"max_attempts": {"type": "integer", "minimum": 1, "maximum": 100},
		"required": {"type": "boolean", "default": true}}}`)
	quizPatchSchema = json.RawMessage(`{"type": "object", "additionalProperties": false, "properties": {
		"title": {"type": "string", "minLength": 1, "maxLength": 200},
		"lesson_id": {"type": "string", "nullable": true, "format": "uuid"},
		"questions": {"type": "array", "minItems": 1, "maxItems": 100, "items": ` + questionInputSchema + `},
		"pass_mark": {"type": "integer", "nullable": true, "minimum": 0, "maximum": 100},
		"max_attempts": {"type": "integer", "nullable": true, "minimum": 1, "maximum": 100},
		"required": {"type": "boolean"}}}`)
	quizSchema = json.RawMessage(`{"type": "object", "required": ["id", "course_id", "title", "questions", "pass_mark", "max_attempts", "required", "created_by", "created_at", "updated_at"], "properties": {
		"id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"lesson_id": {"type": "string", "format": "uuid"},
		"title": {"type": "string"},
		"questions": {"type": "array", "items": ` + questionSchema + `},
		"pass_mark": {"type": "integer", "nullable": true},
		"max_attempts": {"type": "integer", "nullable": true},
		"required": {"type": "boolean"},
		"created_by": {"type": "string", "format": "uuid"},
		"created_at": {"type": "string", "format": "date-time"},
		"updated_at": {"type": "string", "format": "date-time"}}}`)
	attemptCreateSchema = json.RawMessage(`{"type": "object", "required": ["answers"], "additionalProperties": false, "properties": {
		"answers": {"type": "object", "description": "Question ID: the IDs of the options chosen; a question left out scores nothing",
			"additionalProperties": {"type": "array", "items": {"type": "string"}}}}}`)
	attemptItemSchema = `{"type": "object", "required": ["id", "quiz_id", "enrolment_id", "attempt", "score", "max_score", "percent", "passed", "answers", "results", "submitted_at"], "properties": {
		"id": {"type": "string", "format": "uuid"},
		"quiz_id": {"type": "string", "format": "uuid"},
		"enrolment_id": {"type": "string", "format": "uuid"},
		"attempt": {"type": "integer", "minimum": 1},
		"score": {"type": "integer"},
		"max_score": {"type": "integer"},
		"percent": {"type": "integer", "minimum": 0, "maximum": 100},
		"passed": {"type": "boolean"},
		"answers": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}},
		"results": {"type": "array", "items": {"type": "object", "required": ["question_id", "correct", "points"], "properties": {
			"question_id": {"type": "string"}, "correct": {"type": "boolean"}, "points": {"type": "integer"}}}},
		"submitted_at": {"type": "string", "format": "date-time"},
		"pass_mark": {"type": "integer", "description": "In the answer to an attempt: the pass mark it was judged against"},
		"attempts_left": {"type": "integer", "description": "In the answer to an attempt; absent when attempts are unlimited"}}}`
	attemptSchema     = json.RawMessage(attemptItemSchema)
	attemptPageSchema = json.RawMessage(`{"type": "object", "required": ["items"], "properties": {
		"items": {"type": "array", "items": ` + attemptItemSchema + `},
		"next_cursor": {"type": "string"}}}`)
)
