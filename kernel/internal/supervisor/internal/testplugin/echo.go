package main

import (
	"encoding/binary"
	"io"
	"net"
	"os"
)

// serveEcho listens on a Unix socket and answers each length-prefixed
// message (4 bytes big-endian, then the bytes) with the same message: the
// cheapest round trip between the kernel's process and this one.
func serveEcho(path string) error {
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go echo(c)
		}
	}()
	return nil
}

func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4, 4096)
	for {
		if _, err := io.ReadFull(c, buf[:4]); err != nil {
			return
		}
		n := 4 + int(binary.BigEndian.Uint32(buf[:4]))
		if n > cap(buf) {
			buf = append(buf[:4], make([]byte, n-4)...)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(c, buf[4:]); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}
