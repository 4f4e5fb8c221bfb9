"""kill -9 of the broker on its durable storage (tansu on SeaweedFS S3) mid-stream: every
acknowledged message is delivered once, in order, after `platformctl up` restarts it.
A module of its own, so its platform never runs beside the other module's."""

import pytest

from tests.e2e.test_telegram_path import fast_recovery, kill_mid_stream, open_client
from tests.support.platform import running_platform


@pytest.fixture(scope="module")
def durable_platform():
    with running_platform(lambda raw: fast_recovery(raw, storage="s3")) as handle:
        handle.check("up", timeout=300)
        yield handle


@pytest.fixture
async def durable_client(durable_platform):
    client = await open_client(durable_platform)
    yield client
    await client.close()


async def test_broker_sigkill_on_durable_storage_loses_nothing_duplicates_nothing(durable_client, durable_platform):
    await kill_mid_stream(durable_client, durable_platform, "kafka", 10, 20)
