"""Who lives through the simulated month, where, on what schedule, and what they do when."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

START = datetime(2026, 3, 20, tzinfo=UTC)
DAYS = 30
TICK = timedelta(hours=1)
INGEST_AT = timedelta(minutes=5)  # each day's listing arrives at 00:05 UTC
EDIT_AT = timedelta(minutes=7)  # and the editor looks at it at 00:07
BEAT_AFTER_LAST_TICK = timedelta(minutes=5)
WEBHOOK_SECRET = "month-hooks:s3cret"
BACKEND = "tests.simulation.outbox.EveryHandoverOutbox"

# (zone, local send hour): 30- and 45-minute offsets, send hours inside the hour Europe skips
# on 29 March and inside the hour Australia and New Zealand repeat on 5 April.
SCHEDULES = [
    ("UTC", 7),
    ("Europe/London", 1),  # 01:00-02:00 does not exist on 29 March
    ("Europe/Berlin", 2),  # 02:00-03:00 does not exist on 29 March
    ("Europe/Berlin", 8),
    ("America/New_York", 7),
    ("America/Los_Angeles", 23),
    ("Asia/Kolkata", 8),  # +05:30
    ("Asia/Kolkata", 0),
    ("Asia/Kathmandu", 6),  # +05:45
    ("Australia/Adelaide", 2),  # +10:30, then +09:30: 02:00-03:00 twice on 5 April
    ("Australia/Adelaide", 9),
    ("America/St_Johns", 7),  # -02:30
    ("Australia/Eucla", 7),  # +08:45
    ("Pacific/Auckland", 2),  # 02:00-03:00 twice on 5 April
    ("Pacific/Chatham", 3),  # +13:45, then +12:45
    ("Australia/Lord_Howe", 1),  # +11, then +10:30: 01:30-02:00 twice
    ("Asia/Tokyo", 12),
    ("Pacific/Kiritimati", 0),  # +14
    ("Pacific/Pago_Pago", 23),  # -11
    ("Asia/Tehran", 18),  # +03:30
    ("America/Santiago", 23),  # falls back on 5 April
    ("Asia/Jerusalem", 2),  # springs forward on 27 March, 02:00 does not exist
]
TOPICS = [
    "mixture of experts\nMoE",
    "reinforcement learning\n-survey",
    "language models\nreasoning",
    "code generation",
    "attention\ntransformers",
    "graph neural networks",
    "federated learning",
    "scheduling\nonline algorithms",
    "delayed feedback\nbandits",
    "quantization\nmodel compression",
    "spiking neural networks",
    "diffusion models",
    "continual learning",
    "compilers\nprogram synthesis",
    "benchmark",
    "optimization\ngradient descent",
    "large language models\n-survey\n-benchmark",
]
BROAD = "large language models\nreinforcement learning\ncode generation"
ALL_EXCLUSIONS = "-survey\n-benchmark"
MATCHES_NOTHING = "medieval numismatics\nbyzantine coinage"
READER_COUNT = 66


@dataclass(frozen=True)
class Reader:
    email: str
    topics: str
    zone: str
    send_hour: int
    frequency: str = "daily"
    weekday: int = 0

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)


def cast() -> list[Reader]:
    readers = []
    for number in range(READER_COUNT):
        zone, hour = SCHEDULES[number % len(SCHEDULES)]
        weekly = number % 4 == 3
        readers.append(
            Reader(
                email=f"r{number:02d}.{zone.split('/')[-1].lower()}@example.org",
                topics=TOPICS[number % len(TOPICS)],
                zone=zone,
                send_hour=hour,
                frequency="weekly" if weekly else "daily",
                weekday=(number * 3) % 7,
            )
        )
    special = {0: ALL_EXCLUSIONS, 1: MATCHES_NOTHING}
    special.update({number: BROAD for number in ACTORS.values()})
    return [
        Reader(**{**reader.__dict__, "topics": special.get(number, reader.topics)})
        for number, reader in enumerate(readers)
    ]


# Who does what (reader numbers; 7, 11, 15, ... are weekly).
ACTORS = {
    "pauses and resumes": 4,
    "unsubscribes early": 6,
    "pauses for good": 9,
    "bounces": 10,
    "bounces softly once": 12,
    "changes topics": 13,
    "unsubscribes late": 16,
    "weekly, pauses": 19,
    "moves across the date line": 17,
    "moves and goes weekly": 20,
    "rates papers": 14,
    "floods the rating links": 24,
}
# New schedules on the preference page: (zone, send hour, frequency, weekday).
MOVES = {
    "moves across the date line": ("Pacific/Pago_Pago", 0, "daily", 0),  # from Kiritimati, -25 h
    "moves and goes weekly": ("Asia/Kathmandu", 6, "weekly", 2),  # from Santiago, daily
}
NEWCOMER = Reader("newcomer@example.org", BROAD, "Asia/Kolkata", 9)
NEW_TOPICS = "diffusion models\ncontinual learning\n-survey"


@dataclass(frozen=True)
class Step:
    day: int
    at: timedelta
    action: str
    actor: str = ""


PLAN = [
    Step(3, timedelta(hours=10, minutes=10), "pause", "pauses and resumes"),
    Step(5, EDIT_AT, "hide a fresh paper"),
    Step(6, timedelta(hours=14, minutes=10), "one-click unsubscribe", "unsubscribes early"),
    Step(7, timedelta(hours=5, minutes=10), "pause", "pauses for good"),
    Step(9, timedelta(hours=11, minutes=10), "hard bounce", "bounces"),
    Step(10, timedelta(hours=16, minutes=10), "resume", "pauses and resumes"),
    Step(11, EDIT_AT, "merge the duplicate"),
    Step(12, timedelta(hours=8, minutes=10), "change topics", "changes topics"),
    Step(13, timedelta(hours=20, minutes=10), "soft bounce", "bounces softly once"),
    Step(14, EDIT_AT, "hide a sent paper"),
    Step(16, timedelta(hours=12, minutes=10), "change schedule", "moves across the date line"),
    Step(18, timedelta(hours=18, minutes=10), "change schedule", "moves and goes weekly"),
    Step(24, timedelta(minutes=20), "ingest the listing again"),
    Step(8, timedelta(hours=10, minutes=10), "sign up a newcomer"),
    Step(19, EDIT_AT, "pin a sent paper"),
    Step(21, timedelta(hours=10, minutes=10), "sign up again", "unsubscribes early"),
    Step(20, timedelta(hours=3, minutes=10), "one-click unsubscribe", "unsubscribes late"),
    Step(22, timedelta(hours=9, minutes=10), "pause", "weekly, pauses"),
    Step(8, timedelta(hours=12, minutes=10), "rate from the email", "rates papers"),
    Step(15, EDIT_AT, "paste papers like these", "rates papers"),
    Step(17, timedelta(hours=13, minutes=10), "flood the rating links", "floods the rating links"),
]
RATING_FLOOD_LIMIT = 4  # the reader's ratings an hour during the flood
HIDE_FRESH_DAY, MERGE_DAY, RELIST_HIDDEN_DAY = 5, 11, 7
