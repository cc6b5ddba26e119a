"""The job process watcher that runs on a job host (Tengine's ``tengine_job_agent``).

``tengine-watcher run`` starts a script under a detached watchdog and prints ``PID=<n>``;
the watchdog spools the script's output, sends heartbeats and publishes
``finished.process.job.tengine``; ``kill``, ``status`` and ``resend`` act on a job by its id.
Everything the host knows about a job lives in ``<state dir>/jobs/<job id>/`` (see jobdir.py),
and every fact is one line of ``<state dir>/log/watcher.log``. docs/watcher.md has the details.
"""
