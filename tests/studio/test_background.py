"""Background runs: progress reports, cancellation at the next report, errors as one line."""

import threading

from core.errors import InputError
from studio.background import BackgroundRun


def test_reports_arrive_in_order_and_the_result_is_kept():
    def work(progress):
        for stage in ("a", "b"):
            progress(stage, 1.0)
        return 42

    job = BackgroundRun(work)
    assert list(job.updates()) == [("a", 1.0), ("b", 1.0)]
    job.join()
    assert (job.result, job.error, job.cancelled) == (42, None, False)


def test_a_cancelled_run_stops_at_its_next_report():
    reached = []
    first_report = threading.Event()

    def work(progress):
        progress("one", 0.5)
        first_report.wait(5)
        progress("two", 1.0)  # raises: the run was cancelled
        reached.append("after")

    job = BackgroundRun(work)
    job.cancel()
    first_report.set()
    job.join(5)
    assert job.cancelled and reached == [] and job.result is None


def test_errors_become_one_line_and_a_daemon_parent_does_not_make_a_daemon_run():
    def failing(message, kind):
        def work(progress):
            raise kind(message)

        return work

    done = {}

    def start():  # from a daemon thread, like Gradio's workers
        done["input"] = BackgroundRun(failing("clip.mp4: not a video", InputError))
        done["bug"] = BackgroundRun(failing("boom", ZeroDivisionError))

    parent = threading.Thread(target=start, daemon=True)
    parent.start()
    parent.join()
    for job in done.values():
        job.join(5)
        assert not job._thread.daemon
    assert done["input"].error == "clip.mp4: not a video"
    assert done["bug"].error == "internal error: ZeroDivisionError('boom')"
