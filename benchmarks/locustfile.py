"""Locust users of the digit server: each asks for 16-image grids of a random digit with a random seed.

Used by `python -m benchmarks.serve_load` (the README's figures) and by a short smoke test. Think time
between a user's requests: LOCUST_WAIT_MIN..LOCUST_WAIT_MAX seconds (default 0.5..1.5, a person clicking).
LOCUST_STOP_AFTER=N ends the run once N requests were made (the smoke test: a count, not a duration, so it
asks the same of a fast machine and a slow one); unset, the run lasts its `-t`.
"""

import os
import random

import gevent
from locust import HttpUser, between, task

WAIT = (float(os.environ.get("LOCUST_WAIT_MIN", "0.5")), float(os.environ.get("LOCUST_WAIT_MAX", "1.5")))
STOP_AFTER = int(os.environ.get("LOCUST_STOP_AFTER", "0"))


class DigitUser(HttpUser):
    wait_time = between(*WAIT)

    def on_start(self):
        self.digits = self.client.get("/model").json()["digits"]

    @task
    def grid(self):
        query = {"n": 16, "seed": random.randrange(2**32)}
        if self.digits:
            query["digit"] = random.randrange(10)
        self.client.get("/generate.png", params=query, name="/generate.png")
        if STOP_AFTER and self.environment.stats.total.num_requests >= STOP_AFTER:
            # from a greenlet of its own: quit() first stops the users, this one among them
            gevent.spawn(self.environment.runner.quit)
