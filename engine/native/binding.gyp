{
  "targets": [
    {
      "target_name": "relevance_native",
      "sources": ["relevance_native.cc"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-fopenmp", "-ffp-contract=off"],
      "libraries": ["-ldnnl", "-lgomp"]
    }
  ]
}
