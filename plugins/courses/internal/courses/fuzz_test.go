package courses

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/schema"
)

// kernelAccepts is the kernel's check of a request body of v's type
// against its schema, before the plugin sees it.
func kernelAccepts(t testing.TB, v any) func(body []byte) bool {
	t.Helper()
	gen := schema.NewGenerator(Name + ".")
	ref, err := gen.Schema(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := schema.JSONSchemaOf(ref, gen.Components(), true)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Compile("request", doc)
	if err != nil {
		t.Fatal(err)
	}
	return func(body []byte) bool {
		v, err := schema.Decode(body)
		return err == nil && len(schema.Validate(s, v, "")) == 0
	}
}

// FuzzQuiz feeds arbitrary question and answer documents through what a
// quiz attempt runs: the kernel's check of the body against CreateQuiz's
// schema, then the plugin's checks and the grader. Whatever an author or a
// learner sends, nothing panics, accepted questions have what grading
// relies on, and a score never exceeds its maximum.
func FuzzQuiz(f *testing.F) {
	f.Add([]byte(`[{"id":"q1","prompt":"?","kind":"single","options":[{"id":"a","text":"A"},{"id":"b","text":"B"}],"correct":["a"]}]`), []byte(`{"q1":["a"]}`))
	f.Add([]byte(`[{"id":"q","prompt":"?","kind":"multiple","points":3,"options":[{"id":"a","text":"A"},{"id":"b","text":"B"}],"correct":["a","b"]}]`), []byte(`{"q":["b","a","a"]}`))
	f.Add([]byte(`[{"id":"","kind":"odd","options":[],"correct":["x"]}]`), []byte(`{"nope":[]}`))
	accepts := kernelAccepts(f, CreateQuiz{})
	f.Fuzz(func(t *testing.T, questionsJSON, answersJSON []byte) {
		body, err := json.Marshal(map[string]any{"title": "Quiz", "questions": json.RawMessage(questionsJSON)})
		if err != nil {
			return // not JSON
		}
		if !accepts(body) {
			return // the kernel refuses it
		}
		var in CreateQuiz
		if err := (&sdk.Request{Body: body}).Decode(&in); err != nil {
			return
		}
		var bad []sdk.FieldError
		questions := checkQuestions(&bad, "questions", in.Questions)
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
		words := strings.Split(tsq, " & ")
		if len(words) > maxSearchWords {
			t.Fatalf("%q became %d words", q, len(words))
		}
		for _, w := range words {
			word, ok := strings.CutSuffix(w, ":*")
			if !ok || word == "" || strings.ContainsFunc(word, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
				t.Fatalf("%q became %q", q, tsq)
			}
		}
	})
}
