#!/usr/bin/env python3
"""A non-Rust gRPC client that knows nothing of crmbet but its address.

It lists the services through gRPC reflection (open to everyone), builds the message
classes from the descriptors the server sends (no generated stubs, no .proto files), calls
ClusterService.ListClusters with an empty request, once without a token and once with
`authorization: Bearer ACCESS_TOKEN`, and prints one JSON line:
{"services": [...], "clusters": N, "first_cluster_name": "...", "without_token": "CODE"}.

Python's grpcio-reflection client speaks only grpc.reflection.v1alpha, so the server has
to serve that version (it serves v1 as well).

Usage: reflection_client.py HOST:PORT [ACCESS_TOKEN]
Exit status: 0 on success, 1 when any step fails (the reason goes to stderr), 2 on bad usage.
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

# The well-known types are imported for their side effect: they register their files in
# the default pool, the fallback for a server that does not reflect google/protobuf/*.
from google.protobuf import (  # noqa: F401  pylint: disable=unused-import
    any_pb2,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

SERVICE = "crmbet.v1.ClusterService"
METHOD = "ListClusters"
TIMEOUT_SECONDS = 20
WELL_KNOWN_PREFIX = "google/protobuf/"


class ClientError(Exception):
    """A step failed in a way the caller should read about."""


def status_name(code):
    """The name of a numeric gRPC status code, such as NOT_FOUND for 5."""
    for status in grpc.StatusCode:
        if status.value[0] == code:
            return status.name
    return str(code)


def reflect(stub, **request_fields):
    """Sends one reflection request and returns its answer, failing on an error answer."""
    request = reflection_pb2.ServerReflectionRequest(**request_fields)
    try:
        answers = stub.ServerReflectionInfo(iter([request]), timeout=TIMEOUT_SECONDS)
        answer = next(iter(answers), None)
    except grpc.RpcError as error:
        raise ClientError(
            f"reflection call for {request_fields} failed: {error.code().name}: {error.details()}"
        ) from error
    if answer is None:
        raise ClientError(f"the reflection stream closed without answering {request_fields}")
    if answer.HasField("error_response"):
        error = answer.error_response
        raise ClientError(
            f"reflection answered {request_fields} with error "
            f"{status_name(error.error_code)}: {error.error_message}"
        )
    return answer


def list_services(stub):
    """The fully qualified names of the services the server reflects, sorted."""
    answer = reflect(stub, list_services="")
    return sorted(service.name for service in answer.list_services_response.service)


def parse_files(answer):
    """The FileDescriptorProtos carried by one reflection answer."""
    return [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in answer.file_descriptor_response.file_descriptor_proto
    ]


def well_known_file(name):
    """A google/protobuf/* file from the protobuf runtime, or None when it has no such file."""
    try:
        file_descriptor = descriptor_pool.Default().FindFileByName(name)
    except KeyError:
        return None
    proto = descriptor_pb2.FileDescriptorProto()
    file_descriptor.CopyToProto(proto)
    return proto


def fetch_files(stub, symbol):
    """The file defining `symbol` and, transitively, every file it imports, by name."""
    files = {}
    pending = parse_files(reflect(stub, file_containing_symbol=symbol))
    while pending:
        proto = pending.pop()
        if proto.name in files:
            continue
        files[proto.name] = proto
        for dependency in proto.dependency:
            if dependency in files:
                continue
            try:
                pending.extend(parse_files(reflect(stub, file_by_filename=dependency)))
            except ClientError:
                # Like other reflection clients, accept the runtime's copy of a
                # well-known type the server does not reflect; anything else is fatal.
                fallback = well_known_file(dependency) if dependency.startswith(
                    WELL_KNOWN_PREFIX) else None
                if fallback is None:
                    raise
                pending.append(fallback)
    return files


def build_pool(files):
    """A descriptor pool holding `files`, each added after the files it imports."""
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name, importers):
        if name in added:
            return
        if name not in files:
            raise ClientError(f"{importers[-1]} imports {name}, which reflection did not return")
        if name in importers:
            raise ClientError(f"import cycle: {' -> '.join(importers + [name])}")
        for dependency in files[name].dependency:
            add(dependency, importers + [name])
        pool.Add(files[name])
        added.add(name)

    for name in sorted(files):
        add(name, [])
    return pool


def list_clusters(channel, pool, access_token):
    """Calls ListClusters with an empty request through a generic unary-unary call, with the
    access token when there is one."""
    try:
        method = pool.FindServiceByName(SERVICE).FindMethodByName(METHOD)
    except KeyError as error:
        raise ClientError(f"{SERVICE}.{METHOD} is not in the reflected descriptors") from error
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{SERVICE}/{METHOD}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    metadata = (("authorization", f"Bearer {access_token}"),) if access_token else None
    return call(request_class(), timeout=TIMEOUT_SECONDS, metadata=metadata)


def code_without_token(channel, pool):
    """The status code name of ListClusters called without a token (OK if it is open)."""
    try:
        list_clusters(channel, pool, None)
    except grpc.RpcError as error:
        return error.code().name
    return "OK"


def run(address, access_token):
    """Does the whole conversation with the server at `address` and returns the report."""
    with grpc.insecure_channel(address) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=TIMEOUT_SECONDS)
        except grpc.FutureTimeoutError as error:
            raise ClientError(
                f"no gRPC server answered at {address} within {TIMEOUT_SECONDS}s") from error
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        services = list_services(stub)
        if SERVICE not in services:
            raise ClientError(f"{SERVICE} is not among the reflected services: {services}")
        pool = build_pool(fetch_files(stub, SERVICE))
        without_token = code_without_token(channel, pool)
        response = list_clusters(channel, pool, access_token)
    as_json = json_format.MessageToDict(response, preserving_proto_field_name=True)
    clusters = as_json.get("clusters", [])
    return {
        "services": services,
        "clusters": len(clusters),
        "first_cluster_name": clusters[0].get("name", "") if clusters else "",
        "without_token": without_token,
    }


def main(arguments):
    if len(arguments) not in (1, 2) or arguments[0] in ("-h", "--help"):
        print("usage: reflection_client.py HOST:PORT [ACCESS_TOKEN]", file=sys.stderr)
        return 2
    access_token = arguments[1] if len(arguments) == 2 else None
    try:
        report = run(arguments[0], access_token)
    except ClientError as error:
        print(f"reflection_client: {error}", file=sys.stderr)
        return 1
    except grpc.RpcError as error:
        print(f"reflection_client: gRPC call failed: {error.code()}: {error.details()}",
              file=sys.stderr)
        return 1
    except Exception as error:  # pylint: disable=broad-except
        print(f"reflection_client: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
