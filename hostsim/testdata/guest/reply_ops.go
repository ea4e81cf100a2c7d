//go:build wasip1

package main

// The op "reply-with:code|grpc|details|body|name=value,name=value" sends a
// local reply with every argument chosen by the test.

import (
	"strconv"
	"strings"
)

func replyWithOp(arg string) {
	args := strings.SplitN(arg, "|", 5)
	for len(args) < 5 {
		args = append(args, "")
	}
	code, _ := strconv.Atoi(args[0])
	grpc, _ := strconv.Atoi(args[1])
	details, body := args[2], args[3]
	var pairs [][2]string
	if args[4] != "" {
		for _, kv := range strings.Split(args[4], ",") {
			k, v, _ := strings.Cut(kv, "=")
			pairs = append(pairs, [2]string{k, v})
		}
	}
	hdrs := marshal(pairs)
	st := proxySendLocalResponse(uint32(code), ptr(details), uint32(len(details)), ptr(body), uint32(len(body)),
		bptr(hdrs), uint32(len(hdrs)), int32(grpc))
	logf(2, "op=reply-with status="+itoa(st))
}
