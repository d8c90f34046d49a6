"""The progress line long Spark stages print: tasks done, documents, rate and ETA (issue 9)."""
import re
import time

from pipeline.core.stage import Progress


class _Info:
    def __init__(self, done):
        self.numCompletedTasks = done


class _Tracker:
    def __init__(self, done):
        self.done = done

    def getActiveStageIds(self):
        return [7]

    def getStageInfo(self, sid):
        return _Info(self.done)


class _SparkContext:
    def __init__(self):
        self.tracker = _Tracker(0)

    def statusTracker(self):
        return self.tracker


class _Acc:
    value = 0


def test_progress_lines_show_documents_rate_and_eta(capsys):
    sc, acc = _SparkContext(), _Acc()
    with Progress("extract", sc, total=4, label="WARC files", docs_acc=acc, every=0.05) as p:
        sc.tracker.done, acc.value = 1, 1200
        p._t0 = time.time() - 10                         # 10 s in, 1 of 4 files done
        time.sleep(0.3)
    lines = [line.strip("\r") for line in capsys.readouterr().err.splitlines() if line.strip()]
    running = [line for line in lines if line.startswith("[extract] 1/4 WARC files")]
    assert running, lines
    m = re.fullmatch(r"\[extract\] 1/4 WARC files, 1,200 records, ([\d.]+) records/s, (\d+)s, ETA (\d+)s", running[-1])
    assert m, running[-1]
    assert 110 < float(m.group(1)) <= 120 and 10 <= int(m.group(2)) <= 11
    assert 30 <= int(m.group(3)) <= 33                   # 3 files left at 10 s a file
    assert re.fullmatch(r"\[extract\] 4/4 WARC files, 1,200 records, [\d.]+ records/s, \d+s", lines[-1])  # no ETA


class _Stage:
    def __init__(self, tasks, done):
        self.numTasks, self.numCompletedTasks = tasks, done


class _MultiTracker:
    def __init__(self):
        self.stages = {}

    def getActiveStageIds(self):
        return list(self.stages)

    def getStageInfo(self, sid):
        return self.stages.get(sid)


def test_dataframe_job_progress_shows_running_stages_with_eta(capsys):
    """A shuffle stage (dedup): tasks of the Spark stages running now, their ETA, documents written."""
    sc, acc = _SparkContext(), _Acc()
    sc.tracker = _MultiTracker()
    p = Progress("dedup_exact", sc, total=None, label="documents written", docs_acc=acc)
    p._print()                                                       # nothing running yet
    sc.tracker.stages = {3: _Stage(8, 0), 4: _Stage(200, 0)}
    p._print()
    p._seen = {3: time.time() - 30, 4: time.time() - 10}            # stage 3 began 30 s ago, stage 4 10 s ago
    sc.tracker.stages = {3: _Stage(8, 6), 4: _Stage(200, 50)}
    acc.value = 5000
    p._print()
    p._print(final=True)
    lines = [line.strip("\r") for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines[0].startswith("[dedup_exact] running Spark stages: 0/0 tasks, 0 documents written")
    assert lines[1].startswith("[dedup_exact] running Spark stages: 0/208 tasks, 0 documents written")
    m = re.fullmatch(r"\[dedup_exact\] running Spark stages: 56/208 tasks \(ETA (\d+)s\), 5,000 documents written, "
                     r"[\d,.]+/s, \d+s", lines[2])
    assert m and 29 <= int(m.group(1)) <= 31                          # stage 4: 10 s for 50 tasks, 150 left
    assert re.fullmatch(r"\[dedup_exact\] Spark job done: 5,000 documents written, \d+s", lines[3])


def test_a_failed_dataframe_job_says_so(capsys):
    sc = _SparkContext()
    sc.tracker = _MultiTracker()
    try:
        with Progress("dedup_fuzzy", sc, total=None, label="documents written", docs_acc=_Acc(), every=60):
            raise RuntimeError("executor lost")
    except RuntimeError:
        pass
    assert re.fullmatch(r"\[dedup_fuzzy\] Spark job failed: 0 documents written, \d+s\n", capsys.readouterr().err)
