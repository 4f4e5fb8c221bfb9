"""The ConversationService gRPC servicer.

No logic has landed yet (it comes with the identity and conversations work):
every RPC answers UNIMPLEMENTED, never a fake success. The generated base
class raises NotImplementedError and the runtime's interceptor turns that
into the status.
"""

from __future__ import annotations

from chat4all.conversations.v1 import service_pb2, service_pb2_grpc

from services.runtime.app import Runtime

SERVICE = service_pb2.DESCRIPTOR.services_by_name["ConversationService"]
SERVICE_NAME = SERVICE.full_name


class ConversationService(service_pb2_grpc.ConversationServiceServicer):
    pass


async def setup(runtime: Runtime) -> None:
    runtime.add_servicer(service_pb2_grpc.add_ConversationServiceServicer_to_server, ConversationService(), SERVICE_NAME)
