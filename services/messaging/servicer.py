"""The MessageService gRPC servicer.

No logic has landed yet (it comes with the the durable message path work):
every RPC answers UNIMPLEMENTED, never a fake success. The generated base
class raises NotImplementedError and the runtime's interceptor turns that
into the status.
"""

from __future__ import annotations

from chat4all.messaging.v1 import service_pb2, service_pb2_grpc

from services.runtime.app import Runtime

SERVICE = service_pb2.DESCRIPTOR.services_by_name["MessageService"]
SERVICE_NAME = SERVICE.full_name


class MessageService(service_pb2_grpc.MessageServiceServicer):
    pass


async def setup(runtime: Runtime) -> None:
    runtime.add_servicer(service_pb2_grpc.add_MessageServiceServicer_to_server, MessageService(), SERVICE_NAME)
