"""The UserService gRPC servicer.

No logic has landed yet (it comes with the identity and conversations work):
every RPC answers UNIMPLEMENTED, never a fake success. The generated base
class raises NotImplementedError and the runtime's interceptor turns that
into the status.
"""

from __future__ import annotations

from chat4all.users.v1 import service_pb2, service_pb2_grpc

from services.runtime.app import Runtime

SERVICE = service_pb2.DESCRIPTOR.services_by_name["UserService"]
SERVICE_NAME = SERVICE.full_name


class UserService(service_pb2_grpc.UserServiceServicer):
    pass


async def setup(runtime: Runtime) -> None:
    runtime.add_servicer(service_pb2_grpc.add_UserServiceServicer_to_server, UserService(), SERVICE_NAME)
