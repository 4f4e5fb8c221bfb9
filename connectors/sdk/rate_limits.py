"""Send limits enforced before a platform is called, shared by every replica: the runtime's
Redis rate limiter (services/runtime/rate_limits.py), which the front door uses too."""

from services.runtime.rate_limits import Bucket, Limit, RateLimiter, Refusal

__all__ = ["Bucket", "Limit", "RateLimiter", "Refusal"]
