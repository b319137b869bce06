"""Queue events through a live AMI connection (a fake AMI server on a loopback socket), recorded in arrival order."""
from tests.integration.test_ami_connection import FakeAMIServer, make_client  # the fake AMI server lives there
from tests.unit.test_queue_events import CALLER_VARS, recorder, store  # noqa: F401 - fixtures


async def test_recorder_attached_to_a_live_connection_records_in_arrival_order(store, recorder):
    server = await FakeAMIServer().start()
    ami = make_client(server.port)
    try:
        recorder.attach(ami)
        await ami.connect()
        assert await ami.wait_ready(2)
        chan_vars = "".join(f"ChanVariable: {v}\r\n" for v in CALLER_VARS)
        await server.push(f"Event: QueueCallerJoin\r\nQueue: hotline\r\n{chan_vars}\r\n"
                          f"Event: AgentCalled\r\n{chan_vars}\r\n"
                          f"Event: AgentConnect\r\nMemberName: PJSIP/agent1\r\n{chan_vars}\r\n".encode())
        assert await recorder.wait_processed(2, 2)
        assert [fields["outcome"] for _, fields in store.updates] == ["queued", "answered"]
    finally:
        await ami.close()
        await server.stop()
