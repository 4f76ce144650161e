package messaging

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/wneessen/go-mail"
)

// Sending email over SMTP (github.com/wneessen/go-mail, pinned at v0.8.1:
// v0.8.2 needs a newer Go). One connection carries a fan-out run's batch;
// each message's outcome is classified as sent, permanent (the server
// refused it for good: 5xx) or transient (4xx, or the connection failed),
// which the ledger records as sent, bounced or failed, or retrying.

// smtpServer is where and how to send.
type smtpServer struct {
	Host, Security, Username, Password string
	Port                               int
}

func smtpOf(cfg Config) smtpServer {
	return smtpServer{Host: cfg.SMTPHost, Port: cfg.SMTPPort, Security: cfg.SMTPSecurity, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword}
}

func (s smtpServer) client() (*mail.Client, error) {
	if s.Host == "" {
		return nil, errors.New("no SMTP server is configured (smtp_host)")
	}
	opts := []mail.Option{mail.WithPort(s.Port), mail.WithTimeout(30 * time.Second), mail.WithHELO(helo(s.Host))}
	switch s.Security {
	case "tls":
		opts = append(opts, mail.WithSSL(), mail.WithTLSPolicy(mail.TLSMandatory))
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.Username != "" {
		auth := mail.SMTPAuthPlain
		if s.Security == "none" || s.Security == "" {
			auth = mail.SMTPAuthPlainNoEnc // a local catcher: nothing to protect on loopback
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(s.Username), mail.WithPassword(s.Password))
	}
	return mail.NewClient(s.Host, opts...)
}

func helo(host string) string {
	if ip := net.ParseIP(host); ip != nil || host == "localhost" {
		return "localhost"
	}
	return "edulure-messaging"
}

// sendOutcome is what happened to one message.
type sendOutcome struct {
	Sent      bool
	Permanent bool   // refused for good
	Bounce    bool   // refused for its recipient (RCPT TO): the address
	Detail    string // the server's words, or the error
}

// sendMails sends messages over one connection, and reopens it once if it
// breaks. The outcomes are in the order of msgs.
func sendMails(ctx context.Context, srv smtpServer, msgs []*mail.Msg) []sendOutcome {
	out := make([]sendOutcome, len(msgs))
	if len(msgs) == 0 {
		return out
	}
	client, err := srv.client()
	if err != nil {
		for i := range out {
			out[i] = sendOutcome{Detail: err.Error()}
		}
		return out
	}
	connected := false
	defer func() {
		if connected {
			_ = client.Close()
		}
	}()
	for i, m := range msgs {
		if ctx.Err() != nil {
			out[i] = sendOutcome{Detail: "the run ended before it was sent"}
			continue
		}
		if !connected {
			if err := client.DialWithContext(ctx); err != nil {
				out[i] = sendOutcome{Detail: fmt.Sprintf("connecting to %s:%d: %v", srv.Host, srv.Port, err)}
				continue
			}
			connected = true
		}
		err := client.Send(m)
		if err == nil {
			out[i] = sendOutcome{Sent: true}
			continue
		}
		out[i] = classify(err)
		var se *mail.SendError
		if !errors.As(err, &se) || se.Reason == mail.ErrConnCheck || se.Reason == mail.ErrSMTPReset {
			// The connection itself failed: open a new one for the rest.
			_ = client.Close()
			connected = false
		}
	}
	return out
}

// classify reads a failed send.
func classify(err error) sendOutcome {
	o := sendOutcome{Detail: strings.TrimSpace(err.Error())}
	var se *mail.SendError
	if errors.As(err, &se) {
		if code := se.ErrorCode(); code > 0 {
			o.Detail = fmt.Sprintf("SMTP %d: %s", code, strings.TrimSpace(se.Error()))
		}
		o.Permanent = !se.IsTemp() && se.ErrorCode() >= 500
		o.Bounce = o.Permanent && se.Reason == mail.ErrSMTPRcptTo
	}
	if len(o.Detail) > 500 {
		o.Detail = o.Detail[:500]
	}
	return o
}
