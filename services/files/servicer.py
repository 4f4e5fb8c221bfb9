"""The FileService gRPC servicer.

No logic has landed yet (it comes with the files and attachments work):
every RPC answers UNIMPLEMENTED, never a fake success. The generated base
class raises NotImplementedError and the runtime's interceptor turns that
into the status.
"""

from __future__ import annotations

from chat4all.files.v1 import service_pb2, service_pb2_grpc

from services.runtime.app import Runtime

SERVICE = service_pb2.DESCRIPTOR.services_by_name["FileService"]
SERVICE_NAME = SERVICE.full_name


class FileService(service_pb2_grpc.FileServiceServicer):
    pass


async def setup(runtime: Runtime) -> None:
    runtime.add_servicer(service_pb2_grpc.add_FileServiceServicer_to_server, FileService(), SERVICE_NAME)
