package courses

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// QuizAttempt is a learner's graded attempt at a quiz. Results say which
// questions were right, never what the right answers were.
type QuizAttempt struct {
	ID          string              `json:"id" format:"uuid"`
	QuizID      string              `json:"quiz_id" format:"uuid"`
	EnrolmentID string              `json:"enrolment_id" format:"uuid"`
	Attempt     int                 `json:"attempt" minimum:"1"`
	Score       int                 `json:"score"`
	MaxScore    int                 `json:"max_score"`
	Percent     int                 `json:"percent" minimum:"0" maximum:"100"`
	Passed      bool                `json:"passed"`
	Answers     map[string][]string `json:"answers"`
	Results     []QuestionResult    `json:"results"`
	SubmittedAt time.Time           `json:"submitted_at"`
	// PassMark and AttemptsLeft are in the answer to an attempt: the pass
	// mark it was judged against and how many attempts remain (absent:
	// unlimited).
	PassMark     *int `json:"pass_mark,omitempty" doc:"In the answer to an attempt: the pass mark it was judged against."`
	AttemptsLeft *int `json:"attempts_left,omitempty" doc:"In the answer to an attempt; absent when attempts are unlimited."`
}

// QuestionResult is how one question of an attempt scored.
type QuestionResult struct {
	QuestionID string `json:"question_id"`
	Correct    bool   `json:"correct"`
	Points     int    `json:"points" doc:"Earned: the question's points or 0."`
}

// AttemptQuiz is the body of POST /api/v1/quizzes/{quiz_id}/attempts.
type AttemptQuiz struct {
	Answers map[string][]string `json:"answers" doc:"Question ID: the IDs of the options chosen; a question left out scores nothing."`
}

func (p *Plugin) attemptRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/quizzes/{quiz_id}/attempts", Permission: PermEnrolSelf,
			Summary: "Attempt a quiz of a course one is enrolled in; graded at once", Status: http.StatusCreated,
			Request: AttemptQuiz{}, Response: QuizAttempt{},
			Handler: p.attemptQuiz,
		},
		{
			Method: "GET", Path: "/api/v1/quizzes/{quiz_id}/attempts", Permission: PermEnrolSelf,
			Summary:   "The caller's own attempts at a quiz, oldest first",
			Paginated: true, Response: sdk.Page[QuizAttempt]{},
			Handler: p.listAttempts,
		},
	}
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
	var in AttemptQuiz
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	cfg, err := sdk.Config[Config](ctx, req)
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
		var cohort *string
		if err := tx.QueryRow(ctx, `SELECT cohort_id::text FROM enrolments WHERE id = $1`, enrolmentID).Scan(&cohort); err != nil {
			return fmt.Errorf("reading the enrolment's cohort: %w", err)
		}
		ev := QuizAttempted{AttemptID: a.ID, QuizID: quizID, EnrolmentID: enrolmentID, CourseID: q.CourseID, UserID: userID,
			Attempt: a.Attempt, Percent: a.Percent, Passed: a.Passed, AttemptedAt: a.SubmittedAt}
		if cohort != nil {
			ev.CohortID = *cohort
		}
		if err := req.Publish(ctx, tx, EventQuizAttempted, ev); err != nil {
			return err
		}
		if a.Passed {
			if _, err := refreshProgress(ctx, tx, req, enrolmentID); err != nil {
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
	at, afterID, after, err := page.AfterTime()
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
			WHERE quiz_id = $1 AND user_id = $2 AND (NOT $3::bool OR (submitted_at, id) > ($4::timestamptz, $5::uuid))
			ORDER BY submitted_at, id LIMIT $6`,
			quizID, userID, after, at, orNull(afterID), page.Limit+1)
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
		out = sdk.NewPage(items, page.Limit, func(a QuizAttempt) []string { return sdk.TimeKey(a.SubmittedAt, a.ID) })
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
