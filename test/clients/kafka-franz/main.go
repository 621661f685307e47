// A Kafka client in Go for the third-party tests: franz-go (github.com/twmb/franz-go), an idempotent
// producer by default, as Go services use it.
//
//	kafka-franz produce BOOTSTRAP TOPIC N   one synchronous produce per record, values "go 0".."go N-1", no headers
//	kafka-franz consume BOOTSTRAP TOPIC N GROUP   polls as a group member from the start until N records came
//
// Each prints the number of records it produced or consumed.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if len(os.Args) < 5 {
		fmt.Fprintln(os.Stderr, "usage: kafka-franz produce|consume BOOTSTRAP TOPIC N [GROUP]")
		os.Exit(2)
	}
	mode, bootstrap, topic := os.Args[1], os.Args[2], os.Args[3]
	n, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fail(err)
	}
	// Bounded: a broker that stops answering fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	switch mode {
	case "produce":
		client, err := kgo.NewClient(kgo.SeedBrokers(bootstrap), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
		if err != nil {
			fail(err)
		}
		defer client.Close()
		for i := 0; i < n; i++ {
			if err := client.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("go %d", i))}).FirstErr(); err != nil {
				fail(err)
			}
		}
		fmt.Println(n)
	case "consume":
		if len(os.Args) < 6 {
			fail(fmt.Errorf("consume needs a GROUP"))
		}
		client, err := kgo.NewClient(
			kgo.SeedBrokers(bootstrap),
			kgo.ConsumeTopics(topic),
			kgo.ConsumerGroup(os.Args[5]),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		if err != nil {
			fail(err)
		}
		defer client.Close()
		got := 0
		for got < n {
			fetches := client.PollFetches(ctx)
			if err := ctx.Err(); err != nil {
				fail(fmt.Errorf("%d of %d records: %w", got, n, err))
			}
			fetches.EachError(func(t string, p int32, err error) { fail(fmt.Errorf("%s/%d: %w", t, p, err)) })
			got += fetches.NumRecords()
		}
		fmt.Println(got)
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kafka-franz:", err)
	os.Exit(1)
}
