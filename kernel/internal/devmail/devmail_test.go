package devmail

import (
	"encoding/json"
	"io"
	"net/http"
	"net/smtp"
	"testing"

	"github.com/stretchr/testify/require"
)

// A message sent over SMTP is listed on the page and by the JSON API with
// its unsubscribe headers.
func TestCatcher(t *testing.T) {
	c, err := Start("127.0.0.1:0", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	msg := "From: a@x.test\r\nTo: b@y.test\r\nSubject: Hello there\r\nList-Unsubscribe: <https://api.test/u/1>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\nContent-Type: text/plain\r\n\r\nBody text\r\n"
	require.NoError(t, smtp.SendMail(c.SMTPAddr, nil, "a@x.test", []string{"b@y.test"}, []byte(msg)))
	res, err := http.Get("http://" + c.HTTPAddr + "/api/messages")
	require.NoError(t, err)
	defer res.Body.Close()
	var out struct {
		Messages []Message `json:"messages"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	require.Len(t, out.Messages, 1)
	require.Equal(t, "Hello there", out.Messages[0].Subject)
	require.Equal(t, "<https://api.test/u/1>", out.Messages[0].ListUnsubscribe)
	require.Contains(t, out.Messages[0].Text, "Body text")
	page, err := http.Get("http://" + c.HTTPAddr + "/")
	require.NoError(t, err)
	defer page.Body.Close()
	body, err := io.ReadAll(page.Body)
	require.NoError(t, err)
	require.Contains(t, string(body), "Hello there")
}
