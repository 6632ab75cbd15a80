import os

import kombu.exceptions
import redis
from celery import Celery

# What queueing a task raises when the broker cannot be reached.
BROKER_DOWN = (kombu.exceptions.OperationalError, redis.RedisError, ConnectionError, TimeoutError)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("paperboy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Without a broker every task runs eagerly, in-process; Celery still builds a producer for it,
# and one with no broker URL logs "No hostname was supplied" on each call. An in-memory
# transport says what is true: nothing leaves the process.
if app.conf.task_always_eager and not app.conf.broker_url:
    app.conf.broker_url = "memory://localhost/"
