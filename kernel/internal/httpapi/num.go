package httpapi

import "strconv"

func parseInt64(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }
func itoa64(n int64) string              { return strconv.FormatInt(n, 10) }

func itoa(i int) string { return strconv.Itoa(i) }
