//go:build !linux

package proxy

// This file stops a build for another system than Linux.

// Guard runs on Linux only: the relay parks idle streams on epoll, and
// sockets are bounded with TCP_USER_TIMEOUT, TCP_LINGER2 and SIOCOUTQ
// (reactor_linux.go, sockopt_linux.go, sockclose_linux.go). Building for
// another system stops here, with this message:
var _ int = "Guard is Linux-only: build it with GOOS=linux"
