// A Go file server, as in ops' getting-started example: it serves ./static on port 8080.
//
//	go build -o server main.go
//	engitor run -p 8080 -c config.json server     # then curl localhost:8080/hello.html
package main

import (
	"log"
	"net/http"
)

func main() {
	http.Handle("/", http.FileServer(http.Dir("static")))
	log.Println("Listening on :8080...")
	log.Fatal(http.ListenAndServe(":8080", nil))
}
