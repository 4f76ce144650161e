package messaging

// Category groups notifications for preferences: a person chooses per
// category and channel.
type Category string

// The categories.
const (
	CatSecurity      Category = "security"      // password reset, address verification, a locked second factor, a new sign-in
	CatInvitations   Category = "invitations"   // an invitation to an institution (to an address, not a person yet)
	CatAnnouncements Category = "announcements" // announcements in one's spaces
	CatMentions      Category = "mentions"      // someone mentioned you
	CatReplies       Category = "replies"       // a comment on your post, a reply to your comment
	CatGrades        Category = "grades"        // a graded submission, an upheld appeal
	CatEnrolment     Category = "enrolment"     // enrolled, waitlisted, promoted from the waitlist
	CatCertificates  Category = "certificates"  // a certificate issued
	CatBilling       Category = "billing"       // an order paid, a payment failed
	CatDigest        Category = "digest"        // the daily digest itself
)

// Channel is a way of reaching a person.
type Channel string

// The channels.
const (
	Email Channel = "email"
	Push  Channel = "push"
	InApp Channel = "in_app"
)

var channels = []Channel{InApp, Email, Push}

// Mode is what a person (or an institution's default) chose for a
// category on a channel.
type Mode string

// The modes. Digest is for email only.
const (
	Off       Mode = "off"
	Immediate Mode = "immediate"
	Digest    Mode = "digest"
)

// categoryInfo describes a category.
type categoryInfo struct {
	Category Category
	// Critical categories cannot be turned off, by a person or an
	// institution, and ignore quiet hours.
	Critical bool
	// Transactional mail is about the person's own account or dealings:
	// it carries no unsubscribe headers (RFC 8058 is for bulk mail).
	Transactional bool
	// Configurable: a person may choose (not security, invitations,
	// digest).
	Configurable bool
	Description  string
	Defaults     ChannelModes
}

var categories = []categoryInfo{
	{CatSecurity, true, true, false, "Password resets, address verification, sign-in and second-factor alerts.", ChannelModes{Immediate, Immediate, Immediate}},
	{CatInvitations, true, true, false, "Invitations to join an institution.", ChannelModes{Immediate, Off, Off}},
	{CatAnnouncements, false, false, true, "Announcements in your spaces.", ChannelModes{Immediate, Immediate, Immediate}},
	{CatMentions, false, false, true, "Someone mentioned you.", ChannelModes{Digest, Immediate, Immediate}},
	{CatReplies, false, false, true, "Comments on your posts and replies to your comments.", ChannelModes{Digest, Immediate, Immediate}},
	{CatGrades, false, false, true, "Grades and appeal outcomes.", ChannelModes{Immediate, Immediate, Immediate}},
	{CatEnrolment, false, false, true, "Enrolments, waitlists and seats.", ChannelModes{Immediate, Off, Immediate}},
	{CatCertificates, false, false, true, "Certificates issued to you.", ChannelModes{Immediate, Off, Immediate}},
	{CatBilling, false, true, true, "Payments and orders.", ChannelModes{Immediate, Off, Immediate}},
	{CatDigest, false, false, false, "The daily digest of what waited for it.", ChannelModes{Immediate, Off, Off}},
}

func categoryOf(c Category) (categoryInfo, bool) {
	for _, ci := range categories {
		if ci.Category == c {
			return ci, true
		}
	}
	return categoryInfo{}, false
}

// validMode reports whether a mode may be chosen for a channel.
func validMode(ch Channel, m Mode) bool {
	switch m {
	case Off, Immediate:
		return true
	case Digest:
		return ch == Email
	}
	return false
}
