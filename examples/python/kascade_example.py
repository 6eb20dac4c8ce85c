#!/usr/bin/env python3
"""Sends a few kascade tasks, two as JSON and two as protobuf, then reads
their Results from the results topic by id and prints one line each.

Exits 0 only when every task's Result arrived before the timeout.
Needs kascade_pb2.py (protoc --python_out from schemas/kascade.proto) on
the import path; see examples/README.md.
"""
import argparse
import json
import os
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import kascade_pb2

PROTOBUF = "application/x-protobuf"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap-servers",
                   default=os.environ.get("KASCADE_BOOTSTRAP_SERVERS",
                                          "localhost:9092"))
    p.add_argument("--prefix",
                   default=os.environ.get("KASCADE_TOPICS_PREFIX", "kascade."))
    p.add_argument("--timeout", type=float, default=60.0, help="seconds")
    return p.parse_args()


def make_tasks(run):
    """(id, Kafka value, headers) for two tasks in each format."""
    tasks = []
    for fmt in ("json", "protobuf"):
        for n, (kind, text) in enumerate(
                [("classify_intent", "I was charged twice"),
                 ("summarise", "The parcel left the depot on Monday.")], 1):
            task_id = f"py-{run}-{fmt}-{n}"
            if fmt == "json":
                value = json.dumps({"id": task_id, "type": kind,
                                    "input": text,
                                    "metadata": {"client": "python"}})
                headers = []
            else:
                task = kascade_pb2.Task(id=task_id, type=kind, input=text)
                task.metadata["client"] = "python"
                value = task.SerializeToString()
                headers = [("content-type", PROTOBUF)]
            tasks.append((task_id, value, headers))
    return tasks


def decode_result(msg):
    """A Result as a dict, from JSON or (by content-type) protobuf."""
    headers = dict(msg.headers() or [])
    if headers.get("content-type") == PROTOBUF.encode():
        res = kascade_pb2.Result.FromString(msg.value())
        return {"id": res.id, "status": res.status, "tier": res.tier,
                "output": res.output, "format": "protobuf"}
    res = json.loads(msg.value())
    res["format"] = "json"
    return res


def end_offset(consumer, topic, partition, timeout=10.0):
    """Where the partition ends now; retried while a new topic's leaders
    are elected."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout)[1]
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main():
    args = parse_args()
    conf = {"bootstrap.servers": args.bootstrap_servers}
    topic = args.prefix + "results"
    run = f"{int(time.time())}-{os.getpid()}"

    # Start reading results at the current end of the topic, before any
    # task is sent, so that no Result can slip past. No group commits.
    consumer = Consumer({**conf, "group.id": f"kascade-example-py-{run}",
                         "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    if meta.error is not None or not meta.partitions:
        sys.exit(f"{topic}: {meta.error} (run `kascade topics create`)")
    parts = [TopicPartition(topic, p, end_offset(consumer, topic, p))
             for p in meta.partitions]
    consumer.assign(parts)

    failed = []

    def delivered(err, msg):
        if err is not None:
            failed.append(f"{msg.key().decode()}: {err}")

    tasks = make_tasks(run)
    producer = Producer(conf)
    for task_id, value, headers in tasks:
        producer.produce(args.prefix + "tasks", value, key=task_id,
                         headers=headers, on_delivery=delivered)
    if producer.flush(10) != 0 or failed:
        sys.exit("tasks not delivered: " + ", ".join(failed))
    print(f"sent {len(tasks)} tasks to {args.prefix}tasks")

    waiting = {task_id for task_id, _, _ in tasks}
    deadline = time.monotonic() + args.timeout
    while waiting and time.monotonic() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        res = decode_result(msg)
        if res.get("id") in waiting:
            waiting.discard(res["id"])
            print(f"{res['id']} {res['format']} {res['status']} "
                  f"tier={res.get('tier')} output={res.get('output')!r}")
    consumer.close()
    for task_id in sorted(waiting):
        print(f"{task_id} no result within {args.timeout:g} s")
    sys.exit(1 if waiting else 0)


if __name__ == "__main__":
    main()
