{
  "targets": [
    {
      "target_name": "relevance_native",
      "sources": ["relevance_native.cc"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except_all"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-ffp-contract=off"],
      "libraries": ["-ldnnl", "-lgomp"],
      "ldflags": ["-Wl,--disable-new-dtags", "-Wl,-rpath,'$$ORIGIN'"]
    }
  ]
}
