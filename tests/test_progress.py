"""The progress line long Spark stages print: tasks done, documents, rate and ETA (issue 9)."""
import re
import time

from pipeline.stage import Progress


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
