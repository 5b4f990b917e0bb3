package limits

import "time"

// clock is the time source of the types that must wake up by themselves
// ([Pacer]). Tests substitute a manual clock so they never sleep.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) stopper
}

// stopper is the part of *time.Timer a clock returns.
type stopper interface {
	Stop() bool
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }
