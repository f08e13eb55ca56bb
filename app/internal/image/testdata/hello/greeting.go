package main

// greeting is in its own file so a test can change one source file and expect a new digest.
const greeting = "hello"
