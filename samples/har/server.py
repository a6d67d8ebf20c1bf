# Websocket server for the Chromium HAR recording (samples/har/record.sh), loopback only.
import asyncio, sys
from websockets.asyncio.server import serve

PORT = int(sys.argv[1])

async def handler(ws):
    async for msg in ws:
        if isinstance(msg, str) and msg == "fragmented please":
            await ws.send(["frag-", "men", "ted"])          # one text message in 3 frames
        elif isinstance(msg, str) and msg == "ping me":
            await ws.ping(b"are you there")                 # browser answers with a pong
            await asyncio.sleep(0.05)
            await ws.send("pinged")
        elif isinstance(msg, str) and msg == "close please":
            await ws.close(4001, "server says bye")
            return
        else:
            await ws.send(msg)                               # echo text and binary

async def main():
    async with serve(handler, "127.0.0.1", PORT, compression=None) as s:
        await s.serve_forever()

asyncio.run(main())
