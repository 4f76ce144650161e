package courses

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/edulure/edulure/sdk"
)

// FuzzQuiz feeds arbitrary question and answer documents through the
// checks and the grader a quiz attempt runs: whatever an author or a
// learner sends, they never panic, accepted questions have what grading
// relies on, and a score never exceeds its maximum.
func FuzzQuiz(f *testing.F) {
	f.Add([]byte(`[{"id":"q1","prompt":"?","kind":"single","options":[{"id":"a","text":"A"},{"id":"b","text":"B"}],"correct":["a"]}]`), []byte(`{"q1":["a"]}`))
	f.Add([]byte(`[{"id":"q","prompt":"?","kind":"multiple","points":3,"options":[{"id":"a","text":"A"},{"id":"b","text":"B"}],"correct":["a","b"]}]`), []byte(`{"q":["b","a","a"]}`))
	f.Add([]byte(`[{"id":"","kind":"odd","options":[],"correct":["x"]}]`), []byte(`{"nope":[]}`))
	f.Fuzz(func(t *testing.T, questionsJSON, answersJSON []byte) {
		var in []questionInput
		if json.Unmarshal(questionsJSON, &in) != nil {
			return
		}
		var bad []sdk.FieldError
		questions := checkQuestions(&bad, in)
		if len(bad) > 0 {
			return
		}
		for _, q := range questions {
			if q.Points < 1 || len(q.Options) < 2 || len(q.Correct) < 1 {
				t.Fatalf("accepted a question grading cannot use: %+v", q)
			}
		}
		var answers map[string][]string
		if json.Unmarshal(answersJSON, &answers) != nil {
			return
		}
		checked, err := checkAnswers(questions, answers)
		if err != nil {
			return
		}
		results, score, maxScore := gradeQuiz(questions, checked)
		if score < 0 || score > maxScore || len(results) != len(questions) {
			t.Fatalf("score %d of %d with %d results for %d questions", score, maxScore, len(results), len(questions))
		}
	})
}

// FuzzTitleSearch checks that nothing typed into ?q= reaches Postgres as
// tsquery syntax: the query is prefix words joined by &, letters and
// digits only.
func FuzzTitleSearch(f *testing.F) {
	for _, s := range []string{"intro alg", "a & b | !c", "x:*", "'; DROP TABLE courses; --", "日本語 テキスト", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		tsq, msg := titleSearchQuery(q)
		if msg != "" {
			return
		}
		for _, w := range strings.Split(tsq, " & ") {
			word, ok := strings.CutSuffix(w, ":*")
			if !ok || word == "" || strings.ContainsFunc(word, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
				t.Fatalf("%q became %q", q, tsq)
			}
		}
	})
}
