{
  "targets": [
    {
      "target_name": "masq_tun",
      "sources": ["native/tun.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-Wno-unused-parameter"]
    }
  ]
}
