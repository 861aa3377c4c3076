// cwdecode: the decode-only baseline of `rds-forwarder bench`.
//
// It does to each Lambda event file what the original Go forwarder did to an event before it
// could look at a message: encoding/json into the CloudWatch Logs event structs, base64 of
// awslogs.data, gzip, and encoding/json of the payload into the log event structs. It maps,
// encodes and sends nothing, so it is a floor for any Go forwarder of the same design.
//
// The structs are those of github.com/aws/aws-lambda-go/events (cloudwatch_logs.go), copied
// field for field: only the standard library is reachable when this is built.
//
// Usage: cwdecode [-repeat N] EVENT_FILE...
// One JSON line per file: the events and message bytes decoded (so the bench can check the
// work was done) and, with -repeat N, the median time of N decodes in this process.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"
)

// CloudwatchLogsEvent is the Lambda event of a CloudWatch Logs subscription.
type CloudwatchLogsEvent struct {
	AWSLogs CloudwatchLogsRawData `json:"awslogs"`
}

// CloudwatchLogsRawData holds the base64 of the gzip'd payload.
type CloudwatchLogsRawData struct {
	Data string `json:"data"`
}

// CloudwatchLogsData is the decoded payload.
type CloudwatchLogsData struct {
	Owner               string                   `json:"owner"`
	LogGroup            string                   `json:"logGroup"`
	LogStream           string                   `json:"logStream"`
	SubscriptionFilters []string                 `json:"subscriptionFilters"`
	MessageType         string                   `json:"messageType"`
	LogEvents           []CloudwatchLogsLogEvent `json:"logEvents"`
}

// CloudwatchLogsLogEvent is one log event.
type CloudwatchLogsLogEvent struct {
	ID        string `json:"id"`
	Timestamp int64  `json:"timestamp"`
	Message   string `json:"message"`
}

// Parse is aws-lambda-go's CloudwatchLogsRawData.Parse: base64, gzip, JSON.
func (c CloudwatchLogsRawData) Parse() (d CloudwatchLogsData, err error) {
	data, err := base64.StdEncoding.DecodeString(c.Data)
	if err != nil {
		return
	}
	zr, err := gzip.NewReader(bytes.NewBuffer(data))
	if err != nil {
		return
	}
	defer zr.Close()
	dec := json.NewDecoder(zr)
	err = dec.Decode(&d)
	return
}

func decode(raw []byte) (CloudwatchLogsData, error) {
	var event CloudwatchLogsEvent
	if err := json.Unmarshal(raw, &event); err != nil {
		return CloudwatchLogsData{}, err
	}
	return event.AWSLogs.Parse()
}

func main() {
	repeat := flag.Int("repeat", 0, "decode each file this many more times and report the median")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: cwdecode [-repeat N] EVENT_FILE...")
		os.Exit(2)
	}
	out := json.NewEncoder(os.Stdout)
	for _, path := range flag.Args() {
		raw, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %s: %v\n", path, err)
			os.Exit(1)
		}
		data, err := decode(raw)
		if err != nil {
			fmt.Fprintf(os.Stderr, "error: %s: %v\n", path, err)
			os.Exit(1)
		}
		messageBytes := 0
		for _, e := range data.LogEvents {
			messageBytes += len(e.Message)
		}
		line := map[string]interface{}{
			"file":          path,
			"events":        len(data.LogEvents),
			"message_bytes": messageBytes,
		}
		if *repeat > 0 {
			runs := make([]int64, 0, *repeat)
			for i := 0; i < *repeat; i++ {
				start := time.Now()
				if _, err := decode(raw); err != nil {
					fmt.Fprintf(os.Stderr, "error: %s: %v\n", path, err)
					os.Exit(1)
				}
				runs = append(runs, time.Since(start).Nanoseconds())
			}
			sort.Slice(runs, func(i, j int) bool { return runs[i] < runs[j] })
			line["decode_ns_median"] = runs[len(runs)/2]
		}
		if err := out.Encode(line); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(1)
		}
	}
}
