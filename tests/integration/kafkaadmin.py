#!/usr/bin/env python3
"""Topic admin for the integration tests in a fraction of a second (Kafka's
own Java tools take 5 to 15 s to start on a loaded machine, longer than
the faults they switch): librdkafka's Admin API through ctypes.

Usage:
  kafkaadmin.py config BOOTSTRAP TOPIC [KEY=VALUE ...]
      sets the topic's dynamic configs to exactly these (AlterConfigs,
      not incremental: none given drops them all, back to the broker's)
  kafkaadmin.py delete BOOTSTRAP TOPIC
  kafkaadmin.py committed BOOTSTRAP GROUP
      prints the group's committed offsets, "topic partition offset" a line
Exits 0 on success, 1 with the error on stderr.
"""
import ctypes
import ctypes.util
import sys

RD_KAFKA_PRODUCER = 0
RD_KAFKA_RESOURCE_TOPIC = 2
TIMEOUT_MS = 15000

lib = ctypes.CDLL(ctypes.util.find_library("rdkafka") or "librdkafka.so.1")
P = ctypes.c_void_p
for name, res, args in (
        ("rd_kafka_conf_new", P, []),
        ("rd_kafka_conf_set", ctypes.c_int,
         [P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
          ctypes.c_size_t]),
        ("rd_kafka_new", P, [ctypes.c_int, P, ctypes.c_char_p,
                             ctypes.c_size_t]),
        ("rd_kafka_destroy", None, [P]),
        ("rd_kafka_queue_new", P, [P]),
        ("rd_kafka_queue_destroy", None, [P]),
        ("rd_kafka_queue_poll", P, [P, ctypes.c_int]),
        ("rd_kafka_event_error", ctypes.c_int, [P]),
        ("rd_kafka_event_error_string", ctypes.c_char_p, [P]),
        ("rd_kafka_event_destroy", None, [P]),
        ("rd_kafka_event_AlterConfigs_result", P, [P]),
        ("rd_kafka_AlterConfigs_result_resources", P,
         [P, ctypes.POINTER(ctypes.c_size_t)]),
        ("rd_kafka_ConfigResource_error", ctypes.c_int, [P]),
        ("rd_kafka_ConfigResource_error_string", ctypes.c_char_p, [P]),
        ("rd_kafka_event_DeleteTopics_result", P, [P]),
        ("rd_kafka_DeleteTopics_result_topics", P,
         [P, ctypes.POINTER(ctypes.c_size_t)]),
        ("rd_kafka_topic_result_error", ctypes.c_int, [P]),
        ("rd_kafka_topic_result_error_string", ctypes.c_char_p, [P]),
        ("rd_kafka_ConfigResource_new", P, [ctypes.c_int, ctypes.c_char_p]),
        ("rd_kafka_ConfigResource_set_config", ctypes.c_int,
         [P, ctypes.c_char_p, ctypes.c_char_p]),
        ("rd_kafka_ConfigResource_destroy", None, [P]),
        ("rd_kafka_AlterConfigs", None,
         [P, ctypes.POINTER(P), ctypes.c_size_t, P, P]),
        ("rd_kafka_ListConsumerGroupOffsets_new", P, [ctypes.c_char_p, P]),
        ("rd_kafka_ListConsumerGroupOffsets_destroy", None, [P]),
        ("rd_kafka_ListConsumerGroupOffsets", None,
         [P, ctypes.POINTER(P), ctypes.c_size_t, P, P]),
        ("rd_kafka_event_ListConsumerGroupOffsets_result", P, [P]),
        ("rd_kafka_ListConsumerGroupOffsets_result_groups", P,
         [P, ctypes.POINTER(ctypes.c_size_t)]),
        ("rd_kafka_group_result_error", P, [P]),
        ("rd_kafka_group_result_partitions", P, [P]),
        ("rd_kafka_DeleteTopic_new", P, [ctypes.c_char_p]),
        ("rd_kafka_DeleteTopic_destroy", None, [P]),
        ("rd_kafka_DeleteTopics", None,
         [P, ctypes.POINTER(P), ctypes.c_size_t, P, P])):
    fn = getattr(lib, name)
    fn.restype = res
    fn.argtypes = args


def client(bootstrap):
    conf = lib.rd_kafka_conf_new()
    err = ctypes.create_string_buffer(512)
    if lib.rd_kafka_conf_set(conf, b"bootstrap.servers", bootstrap.encode(),
                             err, 512) != 0:
        sys.exit("kafkaadmin: %s" % err.value.decode())
    rk = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, 512)
    if not rk:
        sys.exit("kafkaadmin: %s" % err.value.decode())
    return rk


def wait(rk, q):
    ev = lib.rd_kafka_queue_poll(q, TIMEOUT_MS)
    if not ev:
        sys.exit("kafkaadmin: no answer in %d ms" % TIMEOUT_MS)
    if lib.rd_kafka_event_error(ev):
        msg = lib.rd_kafka_event_error_string(ev).decode()
        lib.rd_kafka_event_destroy(ev)
        sys.exit("kafkaadmin: %s" % msg)
    return ev


def config(bootstrap, topic, pairs):
    rk = client(bootstrap)
    q = lib.rd_kafka_queue_new(rk)
    res = lib.rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC,
                                          topic.encode())
    for kv in pairs:
        k, _, v = kv.partition("=")
        lib.rd_kafka_ConfigResource_set_config(res, k.encode(), v.encode())
    arr = (P * 1)(res)
    lib.rd_kafka_AlterConfigs(rk, arr, 1, None, q)
    ev = wait(rk, q)
    n = ctypes.c_size_t()
    out = lib.rd_kafka_AlterConfigs_result_resources(
        lib.rd_kafka_event_AlterConfigs_result(ev), ctypes.byref(n))
    r = ctypes.cast(out, ctypes.POINTER(P))[0] if n.value else None
    rc = 0
    if r is None or lib.rd_kafka_ConfigResource_error(r):
        print("kafkaadmin: %s: %s" % (topic, (
            lib.rd_kafka_ConfigResource_error_string(r) or b"?").decode()
            if r else "no result"), file=sys.stderr)
        rc = 1
    lib.rd_kafka_event_destroy(ev)
    lib.rd_kafka_ConfigResource_destroy(res)
    lib.rd_kafka_queue_destroy(q)
    lib.rd_kafka_destroy(rk)
    return rc


def delete(bootstrap, topic):
    rk = client(bootstrap)
    q = lib.rd_kafka_queue_new(rk)
    dt = lib.rd_kafka_DeleteTopic_new(topic.encode())
    arr = (P * 1)(dt)
    lib.rd_kafka_DeleteTopics(rk, arr, 1, None, q)
    ev = wait(rk, q)
    n = ctypes.c_size_t()
    out = lib.rd_kafka_DeleteTopics_result_topics(
        lib.rd_kafka_event_DeleteTopics_result(ev), ctypes.byref(n))
    t = ctypes.cast(out, ctypes.POINTER(P))[0] if n.value else None
    rc = 0
    if t is None or lib.rd_kafka_topic_result_error(t):
        print("kafkaadmin: %s: %s" % (topic, (
            lib.rd_kafka_topic_result_error_string(t) or b"?").decode()
            if t else "no result"), file=sys.stderr)
        rc = 1
    lib.rd_kafka_event_destroy(ev)
    lib.rd_kafka_DeleteTopic_destroy(dt)
    lib.rd_kafka_queue_destroy(q)
    lib.rd_kafka_destroy(rk)
    return rc


class TopicPartition(ctypes.Structure):
    _fields_ = [("topic", ctypes.c_char_p), ("partition", ctypes.c_int32),
                ("offset", ctypes.c_int64), ("metadata", P),
                ("metadata_size", ctypes.c_size_t), ("opaque", P),
                ("err", ctypes.c_int), ("_private", P)]


class TopicPartitionList(ctypes.Structure):
    _fields_ = [("cnt", ctypes.c_int), ("size", ctypes.c_int),
                ("elems", ctypes.POINTER(TopicPartition))]


def committed(bootstrap, group):
    rk = client(bootstrap)
    q = lib.rd_kafka_queue_new(rk)
    req = lib.rd_kafka_ListConsumerGroupOffsets_new(group.encode(), None)
    arr = (P * 1)(req)
    lib.rd_kafka_ListConsumerGroupOffsets(rk, arr, 1, None, q)
    ev = wait(rk, q)
    n = ctypes.c_size_t()
    out = lib.rd_kafka_ListConsumerGroupOffsets_result_groups(
        lib.rd_kafka_event_ListConsumerGroupOffsets_result(ev),
        ctypes.byref(n))
    gr = ctypes.cast(out, ctypes.POINTER(P))[0] if n.value else None
    rc = 1
    if gr is not None and not lib.rd_kafka_group_result_error(gr):
        parts = ctypes.cast(lib.rd_kafka_group_result_partitions(gr),
                            ctypes.POINTER(TopicPartitionList))
        for i in range(parts.contents.cnt if parts else 0):
            e = parts.contents.elems[i]
            print("%s %d %d" % (e.topic.decode(), e.partition, e.offset))
        rc = 0
    else:
        print("kafkaadmin: group %s: no result" % group, file=sys.stderr)
    lib.rd_kafka_event_destroy(ev)
    lib.rd_kafka_ListConsumerGroupOffsets_destroy(req)
    lib.rd_kafka_queue_destroy(q)
    lib.rd_kafka_destroy(rk)
    return rc


def main(argv):
    if len(argv) >= 4 and argv[1] == "config":
        return config(argv[2], argv[3], argv[4:])
    if len(argv) == 4 and argv[1] == "committed":
        return committed(argv[2], argv[3])
    if len(argv) == 4 and argv[1] == "delete":
        return delete(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
