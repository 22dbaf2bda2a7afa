@_exported import WallocTensor
@_exported import WallocWavelets
@_exported import WallocNN
@_exported import WallocIO
@_exported import WallocModels
@_exported import WallocMedia
@_exported import WallocCoding
@_exported import WallocTraining
