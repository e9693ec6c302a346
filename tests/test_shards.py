from collections import Counter

import pandas as pd

from emoflow.dataset import shards


def ids(n, prefix="vid"):
    return [f"{prefix}{i:05d}" for i in range(n)]


def test_assignment_is_deterministic_and_depends_only_on_the_id():
    a = shards.assign(ids(500), 16)
    b = shards.assign(list(reversed(ids(500))), 16)
    assert a == list(reversed(b))
    assert shards.shard_index("vid00042", 16) == shards.shard_index("vid00042", 16)


def test_adding_one_video_changes_exactly_one_shard():
    df = pd.DataFrame({"video_id": ids(1000), "path": [f"/d/{v}.mp4" for v in ids(1000)]})
    before = {k: shards.sheet_digest(v) for k, v in shards.plan(df, 32).items()}
    grown = pd.concat([df, pd.DataFrame({"video_id": ["new-one"], "path": ["/d/new.mp4"]})])
    after = {k: shards.sheet_digest(v) for k, v in shards.plan(grown, 32).items()}
    changed = [k for k in after if before.get(k) != after[k]]
    assert changed == [shards.shard_name(shards.shard_index("new-one", 32), 32)]


def test_labels_do_not_change_a_shards_digest():
    df = pd.DataFrame({"video_id": ["a", "b"], "path": ["/a", "/b"], "label": ["happy", "sad"]})
    d1 = shards.sheet_digest(df)
    assert shards.sheet_digest(df.assign(label=["sad", "sad"])) == d1
    assert shards.sheet_digest(df.assign(path=["/a2", "/b"])) != d1


def test_shards_are_balanced_and_named_by_width():
    counts = Counter(shards.assign(ids(20000), 20))
    assert len(counts) == 20
    assert max(counts.values()) / min(counts.values()) < 1.2
    assert shards.shard_name(3, 8) == "s003" and shards.shard_name(3, 20000) == "s00003"
