
from app.challenges import listeners as _challenges  # noqa: F401
