// A small MQTT 3.1.1 client over WebSocket, for the agent console's screen-pops.
//
// Why not a library (MQTT.js, Paho JS): the console runs on hotline machines with no internet, is served only by
// the gateway (no CDN) and has no build step (no npm bundle). The console needs a narrow slice of MQTT: CONNECT
// with username/password and a clean session, SUBSCRIBE at QoS 1, receive PUBLISH at QoS 0/1 (PUBACK the latter),
// PINGREQ keepalive and reconnect. That fits in this file, and it is all that runs in the agent's browser.
"use strict";

const MqttWs = (() => {
  const CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, SUBSCRIBE = 8, SUBACK = 9, PINGREQ = 12, PINGRESP = 13;
  const CONNACK_REASONS = {
    1: "协议版本不受支持", 2: "客户端标识被拒绝", 3: "服务不可用", 4: "用户名或密码错误", 5: "未授权",
  };
  const encoder = new TextEncoder();
  const decoder = new TextDecoder("utf-8");

  function utf8String(text) {
    const bytes = encoder.encode(text);
    const out = new Uint8Array(2 + bytes.length);
    out[0] = bytes.length >> 8; out[1] = bytes.length & 0xff;
    out.set(bytes, 2);
    return out;
  }

  function remainingLength(n) {
    const out = [];
    do {
      let digit = n % 128;
      n = Math.floor(n / 128);
      if (n > 0) digit |= 0x80;
      out.push(digit);
    } while (n > 0);
    return out;
  }

  function packet(firstByte, parts) {
    const bodyLength = parts.reduce((sum, p) => sum + p.length, 0);
    const header = [firstByte, ...remainingLength(bodyLength)];
    const out = new Uint8Array(header.length + bodyLength);
    out.set(header, 0);
    let offset = header.length;
    for (const p of parts) { out.set(p, offset); offset += p.length; }
    return out;
  }

  function u16(n) { return new Uint8Array([n >> 8, n & 0xff]); }

  // Splits a byte stream into MQTT packets: a WebSocket message may hold several packets or part of one.
  class PacketReader {
    constructor() { this.buffer = new Uint8Array(0); }
    push(chunk) {
      const merged = new Uint8Array(this.buffer.length + chunk.length);
      merged.set(this.buffer, 0); merged.set(chunk, this.buffer.length);
      this.buffer = merged;
      const packets = [];
      for (;;) {
        if (this.buffer.length < 2) break;
        let length = 0, multiplier = 1, i = 1, complete = false;
        for (; i < this.buffer.length && i <= 4; i++) {
          const byte = this.buffer[i];
          length += (byte & 0x7f) * multiplier;
          multiplier *= 128;
          if ((byte & 0x80) === 0) { complete = true; i++; break; }
        }
        if (!complete) {
          if (i > 4) throw new Error("malformed remaining length");
          break;
        }
        if (this.buffer.length < i + length) break;
        packets.push({ type: this.buffer[0] >> 4, flags: this.buffer[0] & 0x0f, body: this.buffer.slice(i, i + length) });
        this.buffer = this.buffer.slice(i + length);
      }
      return packets;
    }
  }

  class Client {
    // options: {url, clientId, username, password, topic, keepalive (s), onStatus(state, detail), onMessage(topic, text, info)}
    constructor(options) {
      this.o = Object.assign({ keepalive: 30, reconnectMin: 1000, reconnectMax: 30000 }, options);
      this.ws = null;
      this.stopped = false;
      this.backoff = this.o.reconnectMin;
      this.nextPacketId = 1;
      this.pingTimer = null;
      this.awaitingPong = false;
      this.reconnectTimer = null;
      this.pongs = 0;  // PINGRESPs received: shows the keepalive working (diagnostics, tests)
    }

    start() { this.stopped = false; this.open(); }

    stop() {
      this.stopped = true;
      clearTimeout(this.reconnectTimer);
      this.clearPing();
      if (this.ws) this.ws.close();
    }

    open() {
      this.status("connecting");
      const ws = new WebSocket(this.o.url, ["mqtt"]);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      this.reader = new PacketReader();
      ws.onopen = () => this.sendConnect();
      ws.onmessage = (event) => this.receive(new Uint8Array(event.data));
      ws.onclose = () => this.closed();
      ws.onerror = () => {};  // onclose follows and decides
    }

    send(bytes) {
      if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(bytes);
    }

    sendConnect() {
      // Flags: username, password, clean session (the console wants live pops, not a backlog of old calls).
      const variable = new Uint8Array([0, 4, 77, 81, 84, 84, 4, 0x80 | 0x40 | 0x02, 0, 0]);
      variable[8] = this.o.keepalive >> 8; variable[9] = this.o.keepalive & 0xff;
      this.send(packet(CONNECT << 4, [variable, utf8String(this.o.clientId), utf8String(this.o.username),
        utf8String(this.o.password)]));
    }

    sendSubscribe() {
      const id = this.packetId();
      this.subscribeId = id;
      this.send(packet((SUBSCRIBE << 4) | 0x02, [u16(id), utf8String(this.o.topic), new Uint8Array([1])]));
    }

    packetId() {
      const id = this.nextPacketId;
      this.nextPacketId = id >= 0xffff ? 1 : id + 1;
      return id;
    }

    receive(chunk) {
      let packets;
      try { packets = this.reader.push(chunk); } catch (e) { this.ws.close(); return; }
      for (const p of packets) this.handle(p);
    }

    handle(p) {
      switch (p.type) {
        case CONNACK: {
          const code = p.body[1];
          if (code !== 0) {
            // A refused sign-in will not get better by retrying with the same password.
            this.stopped = true;
            this.status("refused", CONNACK_REASONS[code] || `代码 ${code}`);
            this.ws.close();
            return;
          }
          this.backoff = this.o.reconnectMin;
          this.startPing();
          this.sendSubscribe();
          break;
        }
        case SUBACK: {
          const granted = p.body[2];
          if (granted === 0x80) {
            this.stopped = true;
            this.status("refused", "订阅被拒绝");
            this.ws.close();
          } else {
            this.status("connected");
          }
          break;
        }
        case PUBLISH: this.handlePublish(p); break;
        case PINGRESP: this.awaitingPong = false; this.pongs += 1; break;
        default: break;  // nothing else is expected by a subscriber at QoS <= 1
      }
    }

    handlePublish(p) {
      const qos = (p.flags >> 1) & 0x03;
      const topicLength = (p.body[0] << 8) | p.body[1];
      const topic = decoder.decode(p.body.slice(2, 2 + topicLength));
      let offset = 2 + topicLength;
      let id = null;
      if (qos > 0) { id = (p.body[offset] << 8) | p.body[offset + 1]; offset += 2; }
      const text = decoder.decode(p.body.slice(offset));
      // Acknowledge first: the page de-duplicates by screen-pop id, so a redelivery is harmless, a lost one is not.
      if (qos === 1) this.send(packet(PUBACK << 4, [u16(id)]));
      try {
        this.o.onMessage(topic, text, { qos, dup: (p.flags & 0x08) !== 0, retain: (p.flags & 0x01) !== 0 });
      } catch (e) {
        console.error("screen-pop handler failed", e);
      }
    }

    startPing() {
      this.clearPing();
      this.awaitingPong = false;
      // Ping at half the keepalive; a ping unanswered by the next tick means the connection is dead.
      this.pingTimer = setInterval(() => {
        if (this.awaitingPong) { this.ws.close(); return; }
        this.awaitingPong = true;
        this.send(packet(PINGREQ << 4, []));
      }, this.o.keepalive * 500);
    }

    clearPing() { if (this.pingTimer) clearInterval(this.pingTimer); this.pingTimer = null; }

    closed() {
      this.clearPing();
      if (this.stopped) { if (this.state !== "refused") this.status("closed"); return; }
      const delay = this.backoff;
      this.backoff = Math.min(this.backoff * 2, this.o.reconnectMax);
      this.status("reconnecting", Math.round(delay / 1000));
      this.reconnectTimer = setTimeout(() => this.open(), delay);
    }

    status(state, detail) {
      this.state = state;
      if (this.o.onStatus) this.o.onStatus(state, detail);
    }
  }

  return { Client, PacketReader };
})();
