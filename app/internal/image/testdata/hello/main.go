// Command hello is the smallest main package the image tests build. It prints a greeting and
// the architecture it was built for, so a test can run the binary taken out of an image.
package main

import (
	"fmt"
	"runtime"
)

func main() {
	fmt.Printf("%s from %s/%s\n", greeting, runtime.GOOS, runtime.GOARCH)
}
