// The console's broker connection: MQTT over websockets with MQTT.js (static/vendor/mqtt, the global `mqtt`),
// as the agent's own broker user, so the broker's ACL lets it read only that agent's topic.
//
// Each time the connection is (re)established the topic is subscribed again and, once the broker has granted it,
// onSubscribed() runs: the page then asks the gateway for the current call's screen-pop, which covers whatever
// was published while the page was away (a clean session keeps nothing for an absent client).
"use strict";

const ConsoleBroker = (() => {
  // MQTT 3.1.1 CONNACK return codes (MQTT 3.1.1, 3.2.2.3); mosquitto answers a wrong password with 5.
  const REFUSALS = { 1: "协议版本不受支持", 2: "客户端标识被拒绝", 3: "服务不可用", 4: "用户名或密码错误", 5: "未授权" };
  const RECONNECT_MS = 2000;

  // options: {url, username, password, topic, keepalive (s), onStatus(state, detail), onMessage(topic, text),
  //           onSubscribed()}
  function connect(options) {
    const o = Object.assign({ keepalive: 30 }, options);
    const decoder = new TextDecoder("utf-8");
    let stopped = false;
    const status = (state, detail) => { if (o.onStatus) o.onStatus(state, detail); };
    status("connecting");
    const client = mqtt.connect(o.url, {
      protocolVersion: 4,
      clientId: o.username,  // the broker takes the user name as the client id anyway: one session per agent
      username: o.username,
      password: o.password,
      clean: true,
      keepalive: o.keepalive,
      reconnectPeriod: RECONNECT_MS,
      connectTimeout: 10000,
      resubscribe: false,     // subscribed below on every connect, so the page knows when it holds again
    });
    client.on("connect", () => {
      client.subscribe(o.topic, { qos: 1 }, (error, granted) => {
        if (stopped) return;
        if (error || !granted || !granted.length || granted[0].qos > 2) {
          status("refused", "订阅被拒绝");
          return;
        }
        status("connected");
        if (o.onSubscribed) o.onSubscribed();
      });
    });
    client.on("message", (topic, payload) => {
      if (o.onMessage) o.onMessage(topic, decoder.decode(payload));
    });
    client.on("error", (error) => {
      const code = error && error.code;
      if (REFUSALS[code]) {
        // A refused sign-in will not get better by retrying with the same password.
        stopped = true;
        status("refused", REFUSALS[code]);
        client.end(true);
      }
    });
    client.on("reconnect", () => { if (!stopped) status("reconnecting"); });
    client.on("close", () => { if (!stopped) status("reconnecting"); });
    return {
      client,
      stop() {
        const wasStopped = stopped;
        stopped = true;
        client.end(true);
        if (!wasStopped) status("closed");
      },
      get stopped() { return stopped; },
    };
  }

  return { connect, REFUSALS };
})();
