# A pymycelium node in a container.
#
#   docker build -t pymycelium .
#   docker run -d --name mycelium --cap-add NET_ADMIN --device /dev/net/tun \
#       -v mycelium-key:/var/lib/mycelium pymycelium --public-peers
#   docker exec mycelium mycelium status
#
# The TUN device needs NET_ADMIN and /dev/net/tun (add --network host to reach the overlay from
# the host; without them, run with --no-tun for the message bus and routing only). The key is
# kept in the volume at /var/lib/mycelium; a config file can be mounted at
# /etc/mycelium/mycelium.toml. Arguments after the image name are the daemon's flags.

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The key at /var/lib/mycelium/priv_key.bin, the optional config at /etc/mycelium/mycelium.toml.
ENV XDG_DATA_HOME=/var/lib XDG_CONFIG_HOME=/etc PYTHONUNBUFFERED=1
VOLUME /var/lib/mycelium
EXPOSE 9651/tcp 9651/udp 9650/udp
HEALTHCHECK --interval=30s --timeout=5s CMD ["mycelium", "status", "--json"]
ENTRYPOINT ["mycelium"]
