#!/usr/bin/env python3
"""Which b-trees a SQLite WAL file's commits write, per commit (README, "Benchmarks").

    python3 Benchmarks/wal-frames.py COPY_OF_DB-wal DB

Copy the -wal file while the gateway runs under load (`cp db.sqlite-wal /tmp/copy.wal`), then run
this against the copy and the database file: it counts the frames of each commit in the WAL's
current generation (frames with the header's salts) and names the table or index each frame's page
belongs to (SQLite's dbstat; `/int` marks interior pages). Every frame is a page written twice (WAL,
then checkpoint), so frames per commit is what a change to the schema or to the rows should lower.
"""
import collections
import sqlite3
import struct
import sys

wal_path, db_path = sys.argv[1], sys.argv[2]
data = open(wal_path, "rb").read()
_magic, _version, page_size, _sequence, salt1, salt2, _c1, _c2 = struct.unpack(">8I", data[:32])
commits, current, offset = [], [], 32
while offset + 24 + page_size <= len(data):
    page, commit_size, s1, s2 = struct.unpack(">4I", data[offset:offset + 16])
    if (s1, s2) != (salt1, salt2):
        break  # frames of an older generation
    current.append(page)
    if commit_size:
        commits.append(current)
        current = []
    offset += 24 + page_size
owner = {}
for name, page, kind in sqlite3.connect(db_path).execute("SELECT name, pageno, pagetype FROM dbstat"):
    owner[page] = name + {"internal": "/int", "overflow": "/ovf"}.get(kind, "")
frames = sum(len(c) for c in commits)
print(f"commits {len(commits)}, frames {frames}, frames per commit {frames / max(1, len(commits)):.1f}")
counts = collections.Counter(owner.get(p, "page 1" if p == 1 else "unknown") for c in commits for p in c)
for name, n in counts.most_common(30):
    print(f"{n / max(1, len(commits)):7.2f} {name}")
