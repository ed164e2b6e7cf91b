// `amqplib-v0` is an npm alias of amqplib 0.10.x, whose typings (`@types/amqplib`) are published for
// the name `amqplib` only. The 0.10 API is the one amqplib 2.x declares, so the test borrows those.
declare module 'amqplib-v0' {
  import amqplib = require('amqplib');
  export = amqplib;
}

declare module 'amqplib-v0/callback_api' {
  import callbackApi = require('amqplib/callback_api');
  export = callbackApi;
}
