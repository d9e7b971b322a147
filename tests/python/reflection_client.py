#!/usr/bin/env python3
"""A non-Rust gRPC client that knows nothing of crmbet but its address.

It lists the services through gRPC reflection, builds the message classes from the
descriptors the server sends, calls ClusterService.ListClusters and prints one JSON line:
{"services": [...], "clusters": N, "first_cluster_name": "..."}.

Usage: reflection_client.py HOST:PORT
"""

import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

SERVICE = "crmbet.v1.ClusterService"
METHOD = "ListClusters"


def reflect(stub, **request_fields):
    """One reflection request, one answer."""
    request = reflection_pb2.ServerReflectionRequest(**request_fields)
    return next(iter(stub.ServerReflectionInfo(iter([request]))))


def load_files(stub, pool, symbol):
    """Adds the file defining `symbol` and every file it imports to `pool`."""
    answer = reflect(stub, file_containing_symbol=symbol)
    if answer.HasField("error_response"):
        raise RuntimeError(f"reflection error for {symbol}: {answer.error_response.error_message}")
    files = {}
    pending = list(answer.file_descriptor_response.file_descriptor_proto)
    while pending:
        raw = pending.pop()
        proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
        if proto.name in files:
            continue
        files[proto.name] = proto
        for dependency in proto.dependency:
            if dependency in files:
                continue
            more = reflect(stub, file_by_filename=dependency)
            pending.extend(more.file_descriptor_response.file_descriptor_proto)
    added = set()

    def add(name):
        if name in added:
            return
        for dependency in files[name].dependency:
            add(dependency)
        try:
            pool.Add(files[name])
        except TypeError:
            pass  # already in the default pool (well-known types)
        added.add(name)

    for name in files:
        add(name)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: reflection_client.py HOST:PORT")
    address = sys.argv[1]
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        services = sorted(
            service.name
            for service in reflect(stub, list_services="").list_services_response.service
        )
        if SERVICE not in services:
            sys.exit(f"{SERVICE} is not among the reflected services: {services}")

        pool = descriptor_pool.DescriptorPool()
        load_files(stub, pool, SERVICE)
        method = pool.FindServiceByName(SERVICE).FindMethodByName(METHOD)
        request_class = message_factory.GetMessageClass(method.input_type)
        response_class = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(
            f"/{SERVICE}/{METHOD}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        response = call(request_class(), timeout=20)
        as_json = json_format.MessageToDict(response, preserving_proto_field_name=True)
        clusters = as_json.get("clusters", [])
        print(json.dumps({
            "services": services,
            "clusters": len(clusters),
            "first_cluster_name": clusters[0].get("name", "") if clusters else "",
        }))


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as error:
        sys.exit(f"gRPC call failed: {error.code()}: {error.details()}")
