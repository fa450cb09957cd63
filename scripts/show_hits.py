"""Prints an Elasticsearch _search response (stdin) as a compact table."""
import json
import sys

hits = json.load(sys.stdin)["hits"]["hits"]
print("{:28} {:16} {:22} {}".format("@timestamp", "event.dataset", "host / client", "message"))
for hit in hits:
    s = hit["_source"]
    syslog = s.get("log", {}).get("syslog", {})
    who = syslog.get("hostname") or s.get("source", {}).get("ip") or s.get("host", {}).get("name", "")
    msg = s.get("message") or s.get("url", {}).get("original") or s.get("event", {}).get("original", "")
    status = s.get("http", {}).get("response", {}).get("status_code")
    if status:
        method = s.get("http", {}).get("request", {}).get("method", "")
        msg = "{} {} -> {}".format(method, msg, status)
    print("{:28} {:16} {:22} {}".format(s["@timestamp"], s["event"].get("dataset", ""), str(who)[:22], msg[:70]))
