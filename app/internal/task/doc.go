// Package task defines task states and the registry that maps task names to typed handlers.
//
// A task is a name, an argument type and a handler. To add one, declare a struct for its JSON
// args with a Validate method, and register a Definition, usually from the package that ships
// the handler:
//
//	type resizeArgs struct {
//		Width *int `json:"width"` // a pointer, so that a missing field is not read as 0
//	}
//
//	func (a resizeArgs) Validate() error {
//		if a.Width == nil {
//			return &task.FieldError{Field: "width", Message: "is required"}
//		}
//		return nil
//	}
//
//	task.Register(registry, task.Definition[resizeArgs]{
//		Name:        "resize",
//		Description: "Resize an image to the given width.",
//		Run: func(ctx context.Context, args resizeArgs) (any, error) {
//			return map[string]int{"width": *args.Width}, nil
//		},
//		MaxRetries: -1, // DefaultMaxRetries
//	})
//
// The API calls Registry.Validate to reject bad args before it accepts a task, and stores the
// canonical args that Validate returns. A worker calls Registry.Run with those args. Run decodes
// and validates them again, because a message on the queue may come from any producer.
//
// Errors tell a worker what to do with a failed attempt. An error marked by Permanent fails the
// task without a retry. Any other error, a *PanicError or a missed deadline included, may be
// retried up to the task's retry limit.
package task
