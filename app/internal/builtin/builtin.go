// Package builtin contains the task handlers that every worker ships: fib, sleep, wordstats,
// csvstats and sum. Each handler lives in its own file with its args type and result type.
//
// The data-processing handlers treat malformed input as a permanent error, so a worker fails the
// task at once instead of retrying it. Every handler returns ctx.Err() when ctx is done.
package builtin

import "github.com/taskflow-dev/taskflow/app/internal/task"

// Register adds the built-in tasks to r. It panics if r already has a task with one of their
// names, as task.Register does.
func Register(r *task.Registry) {
	registerFib(r)
	registerSleep(r)
	registerWordStats(r)
	registerCSVStats(r)
	registerSum(r)
}
