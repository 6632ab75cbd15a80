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
