package builtin

import (
	"context"
	"fmt"
	"time"

	"github.com/taskflow-dev/taskflow/app/internal/task"
)

// maxSleepMS is the longest sleep that the sleep task accepts, one hour.
const maxSleepMS = 3_600_000

// SleepResult is the result of the sleep task.
type SleepResult struct {
	// SleptMS is the requested sleep in milliseconds.
	SleptMS int `json:"slept_ms"`
}

type sleepArgs struct {
	MS *int `json:"ms"` // a pointer, so that a missing ms is an error and not 0
}

func (a sleepArgs) Validate() error {
	if a.MS == nil {
		return &task.FieldError{Field: "ms", Message: fmt.Sprintf("is required: give the sleep in milliseconds, 0 to %d", maxSleepMS)}
	}
	if *a.MS < 0 || *a.MS > maxSleepMS {
		return &task.FieldError{Field: "ms", Message: fmt.Sprintf("must be between 0 and %d milliseconds, got %d", maxSleepMS, *a.MS)}
	}
	return nil
}

func registerSleep(r *task.Registry) {
	task.Register(r, task.Definition[sleepArgs]{
		Name:        "sleep",
		Description: fmt.Sprintf("Wait ms milliseconds (0..%d) and return; used to test draining and scaling.", maxSleepMS),
		Run:         runSleep,
		// The default deadline must let the longest accepted sleep finish.
		Timeout:    maxSleepMS*time.Millisecond + time.Minute,
		MaxRetries: -1,
	})
}

// runSleep waits for the requested time or until ctx is done, whichever comes first.
func runSleep(ctx context.Context, args sleepArgs) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	timer := time.NewTimer(time.Duration(*args.MS) * time.Millisecond)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return SleepResult{SleptMS: *args.MS}, nil
	}
}
