"""scribbleseg.models"""
