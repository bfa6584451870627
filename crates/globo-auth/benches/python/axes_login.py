"""Throttled logins with Django and django-axes, timed in one long-lived process.

Driven by benches/throttle_axes.rs: argv[1] is an empty folder (the SQLite database), the
password is the first line of stdin. After setting up, prints `ready <django> <axes>`; then
reads one command per line and answers one line each:

- `right`, `wrong`, `locked`: one `django.contrib.auth.authenticate()` with a request and,
  when it returns a user, the `user_logged_in` signal `django.contrib.auth.login()` sends
  (where axes clears the username's failures on success and writes its access log, as
  globo's `verify_from` clears the account; Django's own `last_login` update is
  disconnected, and the session, which globo has no part in, is left out), timed alone
  (perf_counter_ns); answers `<ns> <user or None> <Argon2 verifications it ran>
  <ns of authenticate() alone>`;
- `reset`: clears alice's and 127.0.0.1's failures (untimed), answers `ok`.
"""
import logging
import os
import sys
import time

import django
from django.conf import settings

folder = sys.argv[1]
password = sys.stdin.readline().rstrip("\n")

settings.configure(
    SECRET_KEY="bench-only",
    DEBUG=False,
    USE_TZ=True,
    DATABASES={
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(folder, "db.sqlite3")}
    },
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "axes"],
    # As django-axes documents: its backend first, its middleware last.
    AUTHENTICATION_BACKENDS=[
        "axes.backends.AxesStandaloneBackend",
        "django.contrib.auth.backends.ModelBackend",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "axes.middleware.AxesMiddleware",
    ],
    PASSWORD_HASHERS=["__main__.GloboProfileArgon2Hasher"],
    # Comparable with globo's ThrottlePolicy::default(): a lock after 100 failures
    # (NIST SP 800-63B-4 §3.2.2) lasting 24 hours, counted per username OR per IP address
    # (globo: per account OR per source), a success clears the username's failures, and an
    # attempt refused during a lock is not counted (globo counts none either).
    AXES_FAILURE_LIMIT=100,
    AXES_LOCKOUT_PARAMETERS=["username", "ip_address"],
    AXES_COOLOFF_TIME=24,
    AXES_RESET_ON_SUCCESS=True,
    AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT=False,
    # globo emits its security events only to a tracing subscriber, and the benchmark has
    # none: axes's log lines are dropped likewise (its database records are kept).
    LOGGING={"version": 1, "loggers": {"axes": {"level": "CRITICAL", "propagate": False}}},
)

from django.contrib.auth.hashers import Argon2PasswordHasher  # noqa: E402


class GloboProfileArgon2Hasher(Argon2PasswordHasher):
    """Django's Argon2 hasher at globo's default profile (rfc9106-low-memory), counting runs."""

    time_cost = 3
    memory_cost = 65536
    parallelism = 4
    runs = 0

    def verify(self, password, encoded):
        GloboProfileArgon2Hasher.runs += 1
        return super().verify(password, encoded)


sys.modules["__main__"].GloboProfileArgon2Hasher = GloboProfileArgon2Hasher
django.setup()
logging.getLogger("axes").setLevel(logging.CRITICAL)

from django.contrib.auth import authenticate, user_logged_in  # noqa: E402
from django.contrib.auth.models import update_last_login  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import RequestFactory  # noqa: E402

import axes  # noqa: E402
from axes.utils import reset  # noqa: E402

user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")
call_command("migrate", verbosity=0, interactive=False)
User.objects.create_user("alice", password=password)
User.objects.create_user("bob", password=password)
factory = RequestFactory()


def login(username, given, ip="127.0.0.1"):
    """authenticate(), then login()'s signal on success; returns (user, ns of authenticate())."""
    request = factory.post("/login/", {"username": username}, REMOTE_ADDR=ip)
    start = time.perf_counter_ns()
    user = authenticate(request, username=username, password=given)
    authenticated = time.perf_counter_ns() - start
    if user is not None:
        user_logged_in.send(sender=user.__class__, request=request, user=user)
    return user, authenticated


# bob is locked by 100 failures from another address (by username, as globo locks the
# account); the timed attempts come from 127.0.0.1, which stays open.
for _ in range(100):
    assert login("bob", "not the password at all", ip="10.0.0.2")[0] is None
before = GloboProfileArgon2Hasher.runs
assert login("bob", password)[0] is None
assert GloboProfileArgon2Hasher.runs == before, "axes let a locked account reach the hasher"
assert login("alice", password)[0] is not None

cases = {
    "right": ("alice", password),
    "wrong": ("alice", "not the password at all"),
    "locked": ("bob", password),
}
print("ready", django.get_version(), axes.__version__ if hasattr(axes, "__version__") else "?", flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "reset":
        reset(username="alice")
        reset(ip="127.0.0.1")
        print("ok", flush=True)
        continue
    username, given = cases[command]
    runs = GloboProfileArgon2Hasher.runs
    start = time.perf_counter_ns()
    user, authenticated = login(username, given)
    elapsed = time.perf_counter_ns() - start
    print(elapsed, user, GloboProfileArgon2Hasher.runs - runs, authenticated, flush=True)
