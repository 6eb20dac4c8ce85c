// Command kascade-example sends a few kascade tasks, two as JSON and two as
// protobuf, then reads their Results from the results topic by id and
// prints one line each. It exits 0 only when every Result arrived in time.
//
// The package kascadepb is generated from schemas/kascade.proto by protoc
// with protoc-gen-go; see examples/README.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	"kascade.dev/examples/go/kascadepb"
)

const protobufType = "application/x-protobuf"

type task struct {
	id      string
	value   []byte
	headers []kgo.RecordHeader
}

// result holds the Result fields printed, from either format.
type result struct {
	ID     string  `json:"id"`
	Status string  `json:"status"`
	Tier   *string `json:"tier"`
	Output *string `json:"output"`
	Format string  `json:"-"`
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func makeTasks(run string) []task {
	inputs := []struct{ kind, text string }{
		{"classify_intent", "I was charged twice"},
		{"summarise", "The parcel left the depot on Monday."},
	}
	var tasks []task
	for _, format := range []string{"json", "protobuf"} {
		for n, in := range inputs {
			id := fmt.Sprintf("go-%s-%s-%d", run, format, n+1)
			meta := map[string]string{"client": "go"}
			t := task{id: id}
			if format == "json" {
				t.value, _ = json.Marshal(map[string]any{
					"id": id, "type": in.kind, "input": in.text,
					"metadata": meta})
			} else {
				t.value, _ = proto.Marshal(&kascadepb.Task{
					Id: proto.String(id), Type: proto.String(in.kind),
					Input: proto.String(in.text), Metadata: meta})
				t.headers = []kgo.RecordHeader{
					{Key: "content-type", Value: []byte(protobufType)}}
			}
			tasks = append(tasks, t)
		}
	}
	return tasks
}

// decodeResult reads a Result as protobuf when its content-type says so,
// else as JSON.
func decodeResult(r *kgo.Record) (result, error) {
	for _, h := range r.Headers {
		if h.Key == "content-type" && string(h.Value) == protobufType {
			var pb kascadepb.Result
			if err := proto.Unmarshal(r.Value, &pb); err != nil {
				return result{}, err
			}
			return result{ID: pb.GetId(), Status: pb.GetStatus(),
				Tier: pb.Tier, Output: pb.Output, Format: "protobuf"}, nil
		}
	}
	res := result{Format: "json"}
	err := json.Unmarshal(r.Value, &res)
	return res, err
}

// endOffsets returns where each partition of topic ends now, asking again
// for up to 10 s while a new topic's leaders are elected.
func endOffsets(ctx context.Context, seeds []string, topic string) (map[int32]kgo.Offset, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var ends kadm.ListedOffsets
	for deadline := time.Now().Add(10 * time.Second); ; {
		ends, err = kadm.NewClient(cl).ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	at := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		at[o.Partition] = kgo.NewOffset().At(o.Offset)
	})
	if len(at) == 0 {
		return nil, fmt.Errorf("%s: no partitions (run `kascade topics create`)", topic)
	}
	return at, nil
}

func main() {
	bootstrap := flag.String("bootstrap-servers",
		envOr("KASCADE_BOOTSTRAP_SERVERS", "localhost:9092"), "Kafka brokers")
	prefix := flag.String("prefix",
		envOr("KASCADE_TOPICS_PREFIX", "kascade."), "topic prefix")
	timeout := flag.Float64("timeout", 60, "seconds to wait for the results")
	flag.Parse()
	seeds := strings.Split(*bootstrap, ",")
	resultsTopic := *prefix + "results"
	ctx, cancel := context.WithTimeout(context.Background(),
		time.Duration(*timeout*float64(time.Second)))
	defer cancel()

	// Read results from the current end of the topic, found before any
	// task is sent, so that no Result can slip past. No consumer group.
	start, err := endOffsets(ctx, seeds, resultsTopic)
	if err != nil {
		log.Fatalf("%s: %v", resultsTopic, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{resultsTopic: start}))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	tasks := makeTasks(fmt.Sprintf("%d-%d", time.Now().Unix(), os.Getpid()))
	waiting := map[string]bool{}
	for _, t := range tasks {
		rec := &kgo.Record{Topic: *prefix + "tasks", Key: []byte(t.id),
			Value: t.value, Headers: t.headers}
		if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
			log.Fatalf("sending %s: %v", t.id, err)
		}
		waiting[t.id] = true
	}
	fmt.Printf("sent %d tasks to %stasks\n", len(tasks), *prefix)

	for len(waiting) > 0 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			res, err := decodeResult(r)
			if err != nil || !waiting[res.ID] {
				return
			}
			delete(waiting, res.ID)
			tier, output := "", ""
			if res.Tier != nil {
				tier = *res.Tier
			}
			if res.Output != nil {
				output = *res.Output
			}
			fmt.Printf("%s %s %s tier=%s output=%q\n",
				res.ID, res.Format, res.Status, tier, output)
		})
	}
	missing := make([]string, 0, len(waiting))
	for id := range waiting {
		missing = append(missing, id)
	}
	sort.Strings(missing)
	for _, id := range missing {
		fmt.Printf("%s no result within %g s\n", id, *timeout)
	}
	if len(missing) > 0 {
		cl.Close()
		os.Exit(1)
	}
}
